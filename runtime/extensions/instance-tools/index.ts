import { definePluginEntry } from "openclaw/plugin-sdk/plugin-entry";
import { sendEmail, validateEmailArgs } from "./src/email.ts";
import { RateLimit } from "./src/rate-limit.ts";
import { sendSms, validateSmsArgs } from "./src/sms.ts";

/**
 * Narrow tools instead of a shell: the agent can send an email or an SMS with this instance's own
 * credentials (passed by the runtime in the gateway's environment), and nothing else. Each tool is
 * registered only when its credentials are present; sends are capped per hour.
 */
const HOUR = 60 * 60 * 1000;

function text(result: string) {
  return { content: [{ type: "text" as const, text: result }], details: { result } };
}

export default definePluginEntry({
  id: "instance-tools",
  name: "Instance tools",
  description: "Email (AgentMail) and SMS (Telnyx) with this instance's own inbox and number.",
  register(api) {
    const env = process.env;
    if (env.AGENTMAIL_API_KEY && env.AGENTMAIL_INBOX_ID) {
      const creds = { apiKey: env.AGENTMAIL_API_KEY, inboxId: env.AGENTMAIL_INBOX_ID };
      const limit = new RateLimit(10, HOUR);
      api.registerTool({
        name: "send_email",
        description: `Send one plain-text email from your inbox (${creds.inboxId}). Only when someone in the chat asks for it.`,
        parameters: {
          type: "object",
          additionalProperties: false,
          required: ["to", "subject", "text"],
          properties: {
            to: { type: "string", description: "One recipient email address" },
            subject: { type: "string", description: "Subject line" },
            text: { type: "string", description: "Plain-text body" },
          },
        },
        async execute(_id: string, params: unknown) {
          const args = validateEmailArgs(params);
          return text(typeof args === "string" ? `Not sent: ${args}` : await sendEmail(creds, args, limit));
        },
      } as never);
    }
    if (env.TELNYX_API_KEY && env.TELNYX_PHONE_NUMBER) {
      const creds = {
        apiKey: env.TELNYX_API_KEY,
        phoneNumber: env.TELNYX_PHONE_NUMBER,
        messagingProfileId: env.TELNYX_MESSAGING_PROFILE_ID || undefined,
      };
      const limit = new RateLimit(10, HOUR);
      api.registerTool({
        name: "send_sms",
        description: `Send one SMS from your phone number (${creds.phoneNumber}). Only when someone in the chat asks for it.`,
        parameters: {
          type: "object",
          additionalProperties: false,
          required: ["to", "text"],
          properties: {
            to: { type: "string", description: "Recipient phone number in E.164 form, e.g. +15551234567" },
            text: { type: "string", description: "Message text (at most 1600 characters)" },
          },
        },
        async execute(_id: string, params: unknown) {
          const args = validateSmsArgs(params);
          return text(typeof args === "string" ? `Not sent: ${args}` : await sendSms(creds, args, limit));
        },
      } as never);
    }
  },
});
