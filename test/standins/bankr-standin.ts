/**
 * Stand-in for the part of Bankr's Wallet API the payments adapter uses, in its wire format as documented
 * (BankrBot/skills `bankr/references/transfers.md`, `portfolio.md`):
 *   GET  /wallet/portfolio?chains=…            → 200 balances (exact decimal strings)
 *   POST /wallet/transfer {tokenAddress, recipientAddress, amount, isNativeToken, chain}
 *                                              → 200 {success, txHash}; 400 with a reason over the wallet's
 *                                                spend limit or for a bad field; 403 when paused
 * Every call needs `X-API-Key` (401 otherwise). Transfers are recorded and debit the USDC balance; faults
 * (5xx, 429, timeouts, lost answers) come from the shared injector.
 */
import { randomBytes } from 'node:crypto';
import { type ProviderServer, startProviderServer } from './provider-http';

export interface BankrTransfer {
  tokenAddress: string;
  recipientAddress: string;
  amount: string;
  chain: string;
  txHash: string;
}

export interface BankrStandin extends ProviderServer {
  apiKey: string;
  /** Transfers that went through, in order. */
  transfers: BankrTransfer[];
  /** USDC on Base, in micro-dollars (6 decimals), so amounts stay exact. */
  usdcMicros: bigint;
  paused: boolean;
}

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const AMOUNT = /^\d{1,12}(\.\d{1,6})?$/;

const micros = (amount: string) => {
  const [whole = '0', frac = ''] = amount.split('.');
  return BigInt(whole) * 1_000_000n + BigInt(frac.padEnd(6, '0'));
};
const decimal = (m: bigint) => `${m / 1_000_000n}.${String(m % 1_000_000n).padStart(6, '0')}`;

export async function startBankrStandin(options: { usdc?: string } = {}): Promise<BankrStandin> {
  const apiKey = `bk_${randomBytes(16).toString('hex')}`;
  const state = {
    transfers: [] as BankrTransfer[],
    usdcMicros: micros(options.usdc ?? '1000'),
    paused: false,
  };
  const server = await startProviderServer((req) => {
    if (req.headers['x-api-key'] !== apiKey) return { status: 401, body: { error: 'Invalid API key' } };
    if (req.method === 'GET' && req.path === '/wallet/portfolio') {
      return {
        status: 200,
        body: {
          balances: {
            base: {
              nativeBalance: '0.010000000000000000',
              nativeUsd: '30.00',
              total: decimal(state.usdcMicros),
              tokenBalances: [
                {
                  token: {
                    symbol: 'USDC',
                    address: '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913',
                    balance: decimal(state.usdcMicros),
                  },
                },
              ],
            },
          },
        },
      };
    }
    if (req.method === 'POST' && req.path === '/wallet/transfer') {
      const b = (req.body ?? {}) as Record<string, unknown>;
      if (state.paused) return { status: 403, body: { error: 'wallet is paused' } };
      if (typeof b.recipientAddress !== 'string' || !ADDRESS.test(b.recipientAddress))
        return { status: 400, body: { error: 'recipientAddress must be a 0x address' } };
      if (typeof b.tokenAddress !== 'string' || !ADDRESS.test(b.tokenAddress))
        return { status: 400, body: { error: 'tokenAddress must be a 0x address' } };
      if (typeof b.amount !== 'string' || !AMOUNT.test(b.amount))
        return { status: 400, body: { error: 'amount must be a decimal string' } };
      const amount = micros(b.amount);
      if (amount > state.usdcMicros) return { status: 400, body: { error: 'insufficient balance' } };
      state.usdcMicros -= amount;
      const txHash = `0x${randomBytes(32).toString('hex')}`;
      state.transfers.push({
        tokenAddress: b.tokenAddress,
        recipientAddress: b.recipientAddress,
        amount: b.amount,
        chain: typeof b.chain === 'string' ? b.chain : 'base',
        txHash,
      });
      return { status: 200, body: { success: true, txHash } };
    }
    return { status: 404, body: { error: 'Not found' } };
  });
  return {
    ...server,
    apiKey,
    transfers: state.transfers,
    get usdcMicros() {
      return state.usdcMicros;
    },
    get paused() {
      return state.paused;
    },
    set paused(v: boolean) {
      state.paused = v;
    },
  };
}
