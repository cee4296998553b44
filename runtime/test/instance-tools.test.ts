// send_email / send_sms: argument validation, the request each one makes (with a recording fetch in
// place of AgentMail/Telnyx, which cannot be reached from here) and the hourly cap.
import { describe, expect, it } from "vitest";
import { sendEmail, validateEmailArgs } from "../extensions/instance-tools/src/email.ts";
import { RateLimit } from "../extensions/instance-tools/src/rate-limit.ts";
import { sendSms, validateSmsArgs } from "../extensions/instance-tools/src/sms.ts";

function recordingFetch(status = 200) {
  const calls: Array<{ url: string; init: RequestInit }> = [];
  const fn = (async (url: string | URL | Request, init?: RequestInit) => {
    calls.push({ url: String(url), init: init ?? {} });
    return new Response("{}", { status });
  }) as typeof fetch;
  return { fn, calls };
}

describe("send_email", () => {
  it("validates its arguments", () => {
    expect(validateEmailArgs({ to: "a@b.co", subject: "Hi", text: "Body" })).toEqual({ to: "a@b.co", subject: "Hi", text: "Body" });
    expect(typeof validateEmailArgs({ to: "a@b.co, c@d.co", subject: "Hi", text: "x" })).toBe("string");
    expect(typeof validateEmailArgs({ to: "not-an-address", subject: "Hi", text: "x" })).toBe("string");
    expect(typeof validateEmailArgs({ to: "a@b.co", subject: "", text: "x" })).toBe("string");
    expect(typeof validateEmailArgs(null)).toBe("string");
  });

  it("posts to the instance's own inbox with its key, and stops at the cap", async () => {
    const { fn, calls } = recordingFetch();
    const limit = new RateLimit(2, 60_000);
    const creds = { apiKey: "am-key", inboxId: "agent@agentmail.to" };
    const args = { to: "a@b.co", subject: "Hi", text: "Body" };
    expect(await sendEmail(creds, args, limit, fn)).toContain("Email sent");
    expect(calls[0]?.url).toBe("https://api.agentmail.to/v0/inboxes/agent%40agentmail.to/messages/send");
    expect((calls[0]?.init.headers as Record<string, string>).authorization).toBe("Bearer am-key");
    expect(JSON.parse(String(calls[0]?.init.body))).toEqual({ to: ["a@b.co"], subject: "Hi", text: "Body" });
    await sendEmail(creds, args, limit, fn);
    expect(await sendEmail(creds, args, limit, fn)).toContain("limit");
    expect(calls).toHaveLength(2);
  });

  it("reports a refused send without leaking the key", async () => {
    const { fn } = recordingFetch(403);
    const out = await sendEmail({ apiKey: "am-key", inboxId: "x@y.z" }, { to: "a@b.co", subject: "s", text: "t" }, new RateLimit(5, 1000), fn);
    expect(out).toContain("403");
    expect(out).not.toContain("am-key");
  });
});

describe("send_sms", () => {
  it("validates E.164 numbers and text length", () => {
    expect(validateSmsArgs({ to: "+15551234567", text: "hi" })).toEqual({ to: "+15551234567", text: "hi" });
    expect(typeof validateSmsArgs({ to: "5551234567", text: "hi" })).toBe("string");
    expect(typeof validateSmsArgs({ to: "+15551234567", text: "x".repeat(1601) })).toBe("string");
  });

  it("sends from the instance's number with its profile", async () => {
    const { fn, calls } = recordingFetch();
    const out = await sendSms(
      { apiKey: "tx-key", phoneNumber: "+15550001111", messagingProfileId: "prof-1" },
      { to: "+15551234567", text: "hello" },
      new RateLimit(1, 60_000),
      fn,
    );
    expect(out).toContain("SMS sent");
    expect(calls[0]?.url).toBe("https://api.telnyx.com/v2/messages");
    expect(JSON.parse(String(calls[0]?.init.body))).toEqual({
      from: "+15550001111",
      to: "+15551234567",
      text: "hello",
      messaging_profile_id: "prof-1",
    });
  });
});

describe("RateLimit", () => {
  it("frees slots as the window slides", () => {
    let t = 0;
    const limit = new RateLimit(2, 100, () => t);
    expect([limit.take(), limit.take(), limit.take()]).toEqual([true, true, false]);
    t = 101;
    expect(limit.take()).toBe(true);
  });
});
