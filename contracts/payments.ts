/**
 * Payments through the pool (`/api/pool/self/payments/*`, docs/api.md "Payments"), written once for the API
 * that enforces these rules and the runtime that checks them first so the agent hears a clear reason at once.
 * Amounts are decimal strings of US dollars, paid as USDC on Base (6 decimals: a dollar is 1 000 000 micros),
 * so nothing is ever a float. Plain TypeScript with no imports.
 */

/** A positive amount of dollars with at most 6 decimals and at most 7 digits before the point. */
export const AMOUNT_USD_PATTERN = '^(0|[1-9][0-9]{0,6})(\\.[0-9]{1,6})?$';
/** A 0x address on Base: 20 bytes of hex (a mixed-case one must carry a valid EIP-55 checksum). */
export const ADDRESS_PATTERN = '^0x[0-9a-fA-F]{40}$';
/** The one-time code a held transfer is confirmed with: six digits, said back by someone in the chat. */
export const CONFIRMATION_CODE_PATTERN = '^[0-9]{6}$';
/** A payment's id (a UUID). */
export const PAYMENT_ID_PATTERN = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

export const PAYMENT_STATUSES = [
  'pending',
  'sending',
  'sent',
  'failed',
  'unknown',
  'refused',
  'expired',
] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

/** Dollars as integer micro-dollars; null when `amount` is not an AMOUNT_USD_PATTERN string. */
export function parseAmountMicros(amount: string): bigint | null {
  if (!new RegExp(AMOUNT_USD_PATTERN).test(amount)) return null;
  const [whole = '0', fraction = ''] = amount.split('.');
  return BigInt(whole) * 1_000_000n + BigInt(fraction.padEnd(6, '0'));
}

/** Micro-dollars as the shortest exact decimal string: 12_500_000n → "12.5", 3_000_000n → "3". */
export function formatMicros(micros: bigint): string {
  const whole = micros / 1_000_000n;
  const fraction = (micros % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '');
  return fraction ? `${whole}.${fraction}` : `${whole}`;
}

/** What `GET /api/pool/self/payments` answers: the instance's allowance and the pool wallet's balances. */
export interface PaymentsAllowance {
  asset: 'USDC';
  chain: 'base';
  dailyCapUsd: string;
  /** Sent, held, in flight or of unknown outcome in the last 24 hours. */
  spentUsd: string;
  remainingUsd: string;
  /** Transfers above this wait for a confirmation code said back in the conversation. */
  confirmAboveUsd: string;
  /** Bankr's portfolio answer, passed on as it came (its shape is not verified here). */
  wallet: unknown;
}

/** A transfer as the payment routes answer it. */
export interface PaymentView {
  id: string;
  status: PaymentStatus;
  amountUsd: string;
  to: string;
  txHash: string | null;
  /** Held transfers: until when the code can be said back. */
  expiresAt: string | null;
  /** Held transfers, in the answer that holds them only: the code to post in the conversation. */
  confirmationCode?: string;
  /** A sentence for the agent to act on. */
  message: string;
}
