// send_sms through Telnyx, from this instance's own number.
import { RateLimit } from "./rate-limit.ts";

export interface SmsArgs {
  to: string;
  text: string;
}

export interface SmsCredentials {
  apiKey: string;
  phoneNumber: string;
  messagingProfileId?: string;
}

export const TELNYX_API = "https://api.telnyx.com/v2";

export function validateSmsArgs(args: unknown): SmsArgs | string {
  const a = (args ?? {}) as Record<string, unknown>;
  if (typeof a.to !== "string" || !/^\+[1-9]\d{6,14}$/.test(a.to.trim())) return "to must be one phone number in E.164 form (+15551234567)";
  if (typeof a.text !== "string" || !a.text.trim() || a.text.length > 1_600) return "text must be 1-1600 characters";
  return { to: a.to.trim(), text: a.text };
}

export async function sendSms(
  creds: SmsCredentials,
  args: SmsArgs,
  limit: RateLimit,
  fetchImpl: typeof fetch = fetch,
): Promise<string> {
  if (!limit.take()) return "Not sent: the hourly SMS limit for this agent is reached.";
  const body: Record<string, string> = { from: creds.phoneNumber, to: args.to, text: args.text };
  if (creds.messagingProfileId) body.messaging_profile_id = creds.messagingProfileId;
  const res = await fetchImpl(`${TELNYX_API}/messages`, {
    method: "POST",
    headers: { authorization: `Bearer ${creds.apiKey}`, "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  if (!res.ok) return `Not sent: the SMS service answered ${res.status}.`;
  return `SMS sent to ${args.to} from ${creds.phoneNumber}.`;
}
