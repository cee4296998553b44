// Payments for the agent, made by the pool on this instance's behalf from the pool's Bankr account (the
// Bankr key stays in the pool). The gateway's payment tools call the outbound server on loopback with the
// gateway token; this forwards to the pool's payment routes (`${POOL_API_URL}/api/pool/self/payments…`) with
// the instance's credentials. The pool enforces the daily cap, holds transfers above its threshold until
// their code is said back, and audits; this side validates first (so the agent hears why at once) and never
// retries a transfer (a retry could pay twice).
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  ADDRESS_PATTERN,
  AMOUNT_USD_PATTERN,
  CONFIRMATION_CODE_PATTERN,
  PAYMENT_ID_PATTERN,
  parseAmountMicros,
} from '../../contracts/payments.ts';
import { HttpError } from './http-errors.ts';
import { readJson } from './http-request.ts';

export const PAYMENT_PATHS = ['/payments', '/payments/transfer', '/payments/confirm'] as const;
export type PaymentPath = (typeof PAYMENT_PATHS)[number];

export interface TransferArgs {
  to: string;
  amountUsd: string;
}
export interface ConfirmArgs {
  paymentId: string;
  code: string;
}

const only = (a: Record<string, unknown>, fields: string[]) =>
  Object.keys(a).find((k) => !fields.includes(k));

export function validateTransferArgs(args: unknown): TransferArgs | string {
  const a = (args ?? {}) as Record<string, unknown>;
  const extra = only(a, ['to', 'amountUsd']);
  if (extra)
    return `unknown field ${extra}: a transfer is a recipient and an amount, paid from the pool's wallet`;
  if (typeof a.to !== 'string' || !new RegExp(ADDRESS_PATTERN).test(a.to))
    return 'to must be one 0x address on Base (40 hex digits); names and handles are not accepted';
  const amount = typeof a.amountUsd === 'string' ? a.amountUsd : '';
  if (!new RegExp(AMOUNT_USD_PATTERN).test(amount) || (parseAmountMicros(amount) ?? 0n) <= 0n)
    return 'amountUsd must be a positive number of dollars as a string, with at most 6 decimals (e.g. "12.50")';
  return { to: a.to, amountUsd: amount };
}

export function validateConfirmArgs(args: unknown): ConfirmArgs | string {
  const a = (args ?? {}) as Record<string, unknown>;
  const extra = only(a, ['paymentId', 'code']);
  if (extra) return `unknown field ${extra}`;
  if (typeof a.paymentId !== 'string' || !new RegExp(PAYMENT_ID_PATTERN).test(a.paymentId))
    return 'paymentId must be the id the held transfer answered';
  if (typeof a.code !== 'string' || !new RegExp(CONFIRMATION_CODE_PATTERN).test(a.code.trim()))
    return 'code must be the six digits a person in the chat said back';
  return { paymentId: a.paymentId, code: a.code.trim() };
}

export interface PaymentDeps {
  instanceId: string;
  instanceToken: string;
  poolApiUrl: string;
  fetch: typeof fetch;
  log?: (line: string) => void;
}

const POOL_TIMEOUT_MS = 45_000;

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(JSON.stringify(body));
}

/** One payment request (already authenticated as the gateway's): validated, then forwarded to the pool. */
export async function routePayment(
  path: PaymentPath,
  req: IncomingMessage,
  res: ServerResponse,
  deps: PaymentDeps,
): Promise<void> {
  const method = path === '/payments' ? 'GET' : 'POST';
  if (req.method !== method) {
    res.setHeader('allow', method);
    throw new HttpError(405, 'method_not_allowed', `use ${method}`);
  }
  let poolPath = '/api/pool/self/payments';
  let body: unknown;
  if (path === '/payments/transfer') {
    const args = validateTransferArgs(await readJson(req));
    if (typeof args === 'string') throw new HttpError(400, 'invalid_request', args);
    poolPath += '/transfers';
    body = args;
  } else if (path === '/payments/confirm') {
    const args = validateConfirmArgs(await readJson(req));
    if (typeof args === 'string') throw new HttpError(400, 'invalid_request', args);
    poolPath += `/transfers/${args.paymentId}/confirm`;
    body = { code: args.code };
  }

  let poolRes: Response;
  try {
    poolRes = await deps.fetch(`${deps.poolApiUrl}${poolPath}`, {
      method,
      headers: {
        authorization: `Bearer ${deps.instanceId}:${deps.instanceToken}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(POOL_TIMEOUT_MS),
    });
  } catch (err) {
    const reason = (err as Error).name === 'TimeoutError' ? 'timed out' : 'unreachable';
    deps.log?.(`[runtime] payment ${path}: pool ${reason}`);
    throw new HttpError(
      502,
      'pool_unreachable',
      path === '/payments'
        ? `the pool is ${reason}; try again later`
        : `the pool is ${reason}: the payment may or may not have been made. Check the allowance before asking again`,
    );
  }
  const answer = (await poolRes.json().catch(() => null)) as Record<string, unknown> | null;
  if (poolRes.ok) {
    deps.log?.(`[runtime] payment ${path} answered ${poolRes.status}`);
    return send(res, poolRes.status, answer ?? {});
  }
  const code = typeof answer?.code === 'string' ? answer.code : null;
  const message =
    typeof answer?.error === 'string' && answer.error
      ? answer.error.slice(0, 400)
      : `the pool answered ${poolRes.status}`;
  deps.log?.(`[runtime] payment ${path} refused by the pool (${poolRes.status} ${code ?? ''})`);
  // The pool refusing our own credentials is the runtime's problem, not the agent's request.
  if (code === 'UNAUTHORIZED' || code === 'FORBIDDEN')
    throw new HttpError(502, 'pool_refused', "the pool refused this instance's credentials");
  const retryAfter = poolRes.headers.get('retry-after');
  send(
    res,
    poolRes.status >= 400 && poolRes.status < 600 ? poolRes.status : 502,
    { error: message, code: (code ?? 'pool_refused').toLowerCase() },
    retryAfter ? { 'retry-after': retryAfter } : {},
  );
}
