import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BankrPayments, USDC_BASE } from '../../activities/providers/bankr';
import {
  ProviderRateLimitedError,
  ProviderRejectedError,
  ProviderUnavailableError,
} from '../../contracts/provider-errors';
import { type BankrStandin, startBankrStandin } from '../standins/bankr-standin';

const TO = '0x742d35Cc6634C0532925a3b844Bc9e7595f0bEb0';

let bankr: BankrStandin;
let payments: BankrPayments;
beforeEach(async () => {
  bankr = await startBankrStandin({ usdc: '100' });
  payments = new BankrPayments({ apiKey: bankr.apiKey, baseUrl: bankr.url, timeoutMs: 1000 });
});
afterEach(() => bankr.close());

describe('Bankr payments adapter (Wallet API)', () => {
  it('sends USDC on Base with the structured transfer body and answers the transaction hash', async () => {
    const { txHash } = await payments.transferUsdc(TO, '12.5');
    expect(txHash).toMatch(/^0x[0-9a-f]{64}$/);
    expect(bankr.transfers).toEqual([
      { tokenAddress: USDC_BASE, recipientAddress: TO, amount: '12.5', chain: 'base', txHash },
    ]);
    expect(bankr.usdcMicros).toBe(87_500_000n);
    const portfolio = (await payments.portfolio()) as { balances: { base: { total: string } } };
    expect(portfolio.balances.base.total).toBe('87.500000');
  });

  it('classifies refusals and faults; the key never appears in an error', async () => {
    const errors: unknown[] = [];
    const capture = (p: Promise<unknown>) =>
      p.catch((e: unknown) => {
        errors.push(e);
        return e;
      });
    // Over the wallet's balance / a bad address: Bankr's 400, final.
    expect(await capture(payments.transferUsdc(TO, '1000'))).toBeInstanceOf(ProviderRejectedError);
    expect(await capture(payments.transferUsdc('vitalik.eth', '1'))).toBeInstanceOf(ProviderRejectedError);
    bankr.paused = true;
    expect(await capture(payments.transferUsdc(TO, '1'))).toBeInstanceOf(ProviderRejectedError);
    bankr.paused = false;
    // Outage, rate limit with its Retry-After, a hung request.
    bankr.faults.failNext(/POST \/wallet\/transfer/, '5xx');
    expect(await capture(payments.transferUsdc(TO, '1'))).toBeInstanceOf(ProviderUnavailableError);
    bankr.faults.failNext(/POST \/wallet\/transfer/, '429');
    const limited = await capture(payments.transferUsdc(TO, '1'));
    expect(limited).toBeInstanceOf(ProviderRateLimitedError);
    expect((limited as ProviderRateLimitedError).retryAfterMs).toBe(1000);
    bankr.faults.failNext(/GET \/wallet\/portfolio/, 'timeout');
    expect(await capture(payments.portfolio())).toBeInstanceOf(ProviderUnavailableError);
    // A wrong key is a rejection too.
    const wrong = new BankrPayments({ apiKey: 'bk_wrong', baseUrl: bankr.url, timeoutMs: 1000 });
    expect(await capture(wrong.portfolio())).toBeInstanceOf(ProviderRejectedError);
    expect(bankr.transfers).toEqual([]);
    expect(errors).toHaveLength(7);
    for (const e of errors) expect(`${String(e)}\n${(e as Error).stack}`).not.toContain(bankr.apiKey);
  });
});
