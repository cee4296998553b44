// The read calls the email tools make: one request to the runtime's loopback outbound server (`POST /mail`),
// which has the pool read this instance's own inbox (src/outbound.ts).
import type {
  MailMessage,
  MailMessageSummary,
  MailPage,
  MailThread,
  MailThreadSummary,
} from '../../../../contracts/mail.ts';

const TIMEOUT_MS = 45_000;

export type MailRead =
  | { read: 'messages'; limit?: number; pageToken?: string; label?: string }
  | { read: 'threads'; limit?: number; pageToken?: string; label?: string }
  | { read: 'message'; id: string }
  | { read: 'thread'; id: string };

export interface MailResults {
  messages: MailPage<MailMessageSummary>;
  threads: MailPage<MailThreadSummary>;
  message: MailMessage;
  thread: MailThread;
}

/** Asks the runtime for one read; never throws (a failure is a reason the agent can repeat). */
export async function requestMail<R extends MailRead>(
  outboundUrl: string,
  gatewayToken: string,
  args: R,
  fetchImpl: typeof fetch = fetch,
): Promise<{ ok: true; result: MailResults[R['read']] } | { ok: false; message: string }> {
  try {
    const res = await fetchImpl(`${outboundUrl}/mail`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gatewayToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(args),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const body = (await res.json().catch(() => ({}))) as { result?: unknown; error?: unknown };
    if (res.ok && body.result && typeof body.result === 'object')
      return { ok: true, result: body.result as MailResults[R['read']] };
    return {
      ok: false,
      message: typeof body.error === 'string' ? body.error : `the runtime answered ${res.status}`,
    };
  } catch {
    return { ok: false, message: "the runtime's outbound service did not answer; try again later" };
  }
}
