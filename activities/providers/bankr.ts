/**
 * Bankr's Wallet API with the pool's key (`X-API-Key`), for payments on an instance's behalf: the portfolio
 * read (`GET /wallet/portfolio`) and a transfer (`POST /wallet/transfer`). The synchronous Wallet API, not the
 * prompt-based Agent API (`POST /agent/prompt`, then `GET /agent/job/{jobId}`): a transfer's amount, token and
 * recipient are structured fields the pool checked against the instance's cap, where a natural-language
 * prompt could move whatever it says. Only USDC on Base: its dollar value is its amount, so a cap in USD holds
 * without a price feed.
 */
import type { PaymentsProvider } from '../../contracts/resources';
import { HttpClient } from './http';

/** USDC on Base (Circle's native USDC contract). */
export const USDC_BASE = '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';

export interface BankrOptions {
  apiKey: string;
  /** `https://api.bankr.bot` (no trailing slash). */
  baseUrl: string;
  timeoutMs?: number;
}

export class BankrPayments implements PaymentsProvider {
  private readonly http: HttpClient;
  constructor(opts: BankrOptions) {
    this.http = new HttpClient({
      baseUrl: opts.baseUrl,
      provider: 'bankr',
      headers: () => ({ 'x-api-key': opts.apiKey }),
      timeoutMs: opts.timeoutMs ?? 30_000,
    });
  }

  portfolio(): Promise<unknown> {
    return this.http.request<unknown>('GET', '/wallet/portfolio', { query: { chains: 'base' } });
  }

  async transferUsdc(to: string, amountUsd: string): Promise<{ txHash: string | null }> {
    const body = await this.http.request<Record<string, unknown> | null>('POST', '/wallet/transfer', {
      body: {
        tokenAddress: USDC_BASE,
        recipientAddress: to,
        amount: amountUsd,
        isNativeToken: false,
        chain: 'base',
      },
    });
    // The answer's field name is not documented where we could read it: take the usual ones, else none.
    const hash = body?.txHash ?? body?.transactionHash ?? body?.hash;
    return { txHash: typeof hash === 'string' ? hash : null };
  }
}
