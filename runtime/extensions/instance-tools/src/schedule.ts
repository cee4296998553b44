// The schedule tools: schedule_message, list_scheduled, cancel_scheduled. Each is bound to the conversation of
// the turn it is offered in, taken from the turn's session (never from the model's arguments), so an agent
// can schedule only into the conversation it is talking in; the runtime keeps, limits and sends the messages
// (runtime/src/scheduler.ts) through its loopback outbound server.
const TIMEOUT_MS = 15_000;

export const SCHEDULE_TOOL_NAMES = ['schedule_message', 'list_scheduled', 'cancel_scheduled'] as const;

/** What the tool factory is told about the turn (OpenClawPluginToolContext). */
export interface TurnContext {
  messageChannel?: string;
  sessionKey?: string;
}

/**
 * The conversation of a turn, as the runtime names it: `convos:<group id>` for a Convos group (session
 * `agent:<id>:convos:group:<group id>`), `chat:<session>` for a local chat page tab (session
 * `agent:<id>:openai-user:chat-<session>`, runtime/src/chat-page.ts `chatUser`); null for anything else
 * (the runtime's inbound email turns, the warm-up), where the tools are not offered.
 */
export function conversationOf(ctx: TurnContext): string | null {
  const key = (ctx.sessionKey ?? '').toLowerCase();
  const group = /:convos:group:([0-9a-f]{16,128})$/.exec(key);
  if (group) return `convos:${group[1]}`;
  const chat = /:openai-user:chat-([a-z0-9-]{8,64})$/.exec(key);
  if (chat) return `chat:${chat[1]}`;
  return null;
}

function text(result: string) {
  return { content: [{ type: 'text' as const, text: result }], details: { result } };
}

async function call(
  outboundUrl: string,
  token: string,
  path: string,
  body: Record<string, unknown>,
  fetchImpl: typeof fetch,
): Promise<{ ok: true; body: Record<string, unknown> } | { ok: false; message: string }> {
  try {
    const res = await fetchImpl(`${outboundUrl}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const answer = ((await res.json().catch(() => ({}))) ?? {}) as Record<string, unknown>;
    if (res.ok) return { ok: true, body: answer };
    return {
      ok: false,
      message: typeof answer.error === 'string' ? answer.error : `the runtime answered ${res.status}`,
    };
  } catch {
    return { ok: false, message: "the runtime's scheduler did not answer; try again" };
  }
}

const arg = (params: unknown, name: string): unknown =>
  params && typeof params === 'object' ? (params as Record<string, unknown>)[name] : undefined;

/** The three tools for one conversation. */
export function scheduleTools(
  outboundUrl: string,
  token: string,
  conversation: string,
  fetchImpl: typeof fetch = fetch,
) {
  return {
    schedule_message: {
      name: 'schedule_message',
      label: 'Schedule a message',
      description:
        'Post a message in this conversation later, once: a reminder or a nudge someone here asked for. Give the time as `at` (ISO 8601 with the time zone offset, e.g. 2026-12-01T18:30:00+01:00) or as `in_minutes` from now, and the exact text to post (it is posted as written, you are not asked again). There are limits (how many are pending, how close together, how far ahead); a refusal says which.',
      parameters: {
        type: 'object',
        additionalProperties: false,
        required: ['text'],
        properties: {
          text: {
            type: 'string',
            description: 'The message to post, as it should read (at most 2000 characters)',
          },
          at: { type: 'string', description: 'When: an ISO 8601 time with its zone offset' },
          in_minutes: { type: 'number', description: 'Or when: this many minutes from now' },
        },
      },
      async execute(_id: string, params: unknown) {
        const at = arg(params, 'at');
        const inMinutes = arg(params, 'in_minutes');
        const out = await call(
          outboundUrl,
          token,
          '/schedule',
          {
            conversation,
            text: arg(params, 'text'),
            ...(at !== undefined ? { at } : {}),
            ...(inMinutes !== undefined ? { inMinutes } : {}),
          },
          fetchImpl,
        );
        if (!out.ok) return text(`Not scheduled: ${out.message}.`);
        const s = out.body.scheduled as { id: string; dueAt: string };
        return text(`Scheduled ${s.id}: it will be posted here at ${s.dueAt} (UTC).`);
      },
    },
    list_scheduled: {
      name: 'list_scheduled',
      label: 'List scheduled messages',
      description: 'List the messages scheduled in this conversation that are not posted yet, soonest first.',
      parameters: { type: 'object', additionalProperties: false, properties: {} },
      async execute() {
        const out = await call(outboundUrl, token, '/scheduled', { conversation }, fetchImpl);
        if (!out.ok) return text(`Could not list: ${out.message}.`);
        const list = out.body.messages as Array<{ id: string; dueAt: string; text: string }>;
        if (!list.length) return text('Nothing is scheduled in this conversation.');
        return text(list.map((m) => `${m.id} at ${m.dueAt} (UTC): ${m.text}`).join('\n'));
      },
    },
    cancel_scheduled: {
      name: 'cancel_scheduled',
      label: 'Cancel a scheduled message',
      description: 'Cancel one scheduled message of this conversation by the id list_scheduled gave.',
      parameters: {
        type: 'object',
        additionalProperties: false,
        required: ['id'],
        properties: { id: { type: 'string', description: 'The id, e.g. sch_0123456789abcdef' } },
      },
      async execute(_id: string, params: unknown) {
        const out = await call(
          outboundUrl,
          token,
          '/scheduled/cancel',
          { conversation, id: arg(params, 'id') },
          fetchImpl,
        );
        if (!out.ok) return text(`Not cancelled: ${out.message}.`);
        const c = out.body.cancelled as { id: string; dueAt: string };
        return text(`Cancelled ${c.id} (it was due at ${c.dueAt} UTC).`);
      },
    },
  };
}
