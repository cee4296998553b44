// send_email through AgentMail, from this instance's own inbox.
import { RateLimit } from "./rate-limit.ts";

export interface EmailArgs {
  to: string;
  subject: string;
  text: string;
}

export interface EmailCredentials {
  apiKey: string;
  inboxId: string;
}

export const AGENTMAIL_API = "https://api.agentmail.to/v0";
const EMAIL_RE = /^[^\s@<>,;]+@[^\s@<>,;]+\.[^\s@<>,;]+$/;

export function validateEmailArgs(args: unknown): EmailArgs | string {
  const a = (args ?? {}) as Record<string, unknown>;
  if (typeof a.to !== "string" || !EMAIL_RE.test(a.to.trim())) return "to must be one email address";
  if (typeof a.subject !== "string" || !a.subject.trim() || a.subject.length > 200) return "subject must be 1-200 characters";
  if (typeof a.text !== "string" || !a.text.trim() || a.text.length > 10_000) return "text must be 1-10000 characters";
  return { to: a.to.trim(), subject: a.subject.trim(), text: a.text };
}

export async function sendEmail(
  creds: EmailCredentials,
  args: EmailArgs,
  limit: RateLimit,
  fetchImpl: typeof fetch = fetch,
): Promise<string> {
  if (!limit.take()) return "Not sent: the hourly email limit for this agent is reached.";
  const res = await fetchImpl(`${AGENTMAIL_API}/inboxes/${encodeURIComponent(creds.inboxId)}/messages/send`, {
    method: "POST",
    headers: { authorization: `Bearer ${creds.apiKey}`, "content-type": "application/json" },
    body: JSON.stringify({ to: [args.to], subject: args.subject, text: args.text }),
    signal: AbortSignal.timeout(20_000),
  });
  if (!res.ok) return `Not sent: the email service answered ${res.status}.`;
  return `Email sent to ${args.to} from ${creds.inboxId}.`;
}
