// The local chat for XMTP_ENV=off: a page at /chat/<chat secret> and its message endpoint, which
// forwards to the gateway's /v1/chat/completions with the gateway token. The secret in the URL is
// separate from the gateway token, so sharing the link never hands out gateway (operator) access. The page
// also listens on /chat/<secret>/events (src/chat-events.ts) for messages the agent sends on its own.
import { controlCharacterProblem } from '../../contracts/claim.ts';

export interface ChatDeps {
  gatewayUrl: string;
  gatewayToken: string;
  agentName: () => string;
}

/** The longest message the page accepts (the convos channel cuts XMTP messages at the same length). */
export const MAX_MESSAGE_CHARS = 8_000;

/**
 * Messages of one chat session (one OpenClaw session, one browser tab) that may wait or run at once. The
 * gateway answers a session's turns one at a time, so every extra concurrent request is a queued turn
 * holding a connection and, later, a model call. Past the bound the NEWEST is refused (429): the older
 * ones are already at the gateway and their senders are waiting for those answers, while the refused
 * sender learns at once and can send again.
 */
export const MAX_PENDING_CHAT_MESSAGES_PER_SESSION = 20;
/** The same across all sessions: a session id is the browser's own choice, so per session alone is no bound. */
export const MAX_PENDING_CHAT_MESSAGES = 50;

/** Counts chat messages in flight, per session and in total. */
export class ChatQueue {
  private readonly perSession = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly perSessionMax = MAX_PENDING_CHAT_MESSAGES_PER_SESSION,
    private readonly totalMax = MAX_PENDING_CHAT_MESSAGES,
  ) {}

  /** Takes a slot for `session`, or returns false when the session or the instance is full. */
  tryEnter(session: string): boolean {
    const mine = this.perSession.get(session) ?? 0;
    if (mine >= this.perSessionMax || this.total >= this.totalMax) return false;
    this.perSession.set(session, mine + 1);
    this.total += 1;
    return true;
  }

  leave(session: string): void {
    const mine = this.perSession.get(session) ?? 0;
    if (mine <= 1) this.perSession.delete(session);
    else this.perSession.set(session, mine - 1);
    this.total = Math.max(0, this.total - 1);
  }

  get pending(): number {
    return this.total;
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function chatPageHtml(agentName: string): string {
  const name = escapeHtml(agentName);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${name}</title>
<style>
body{font:16px system-ui,sans-serif;margin:0;display:flex;flex-direction:column;height:100vh;background:#f6f6f4}
header{padding:12px 16px;background:#111;color:#fff;font-weight:600}
#log{flex:1;overflow-y:auto;padding:16px;display:flex;flex-direction:column;gap:8px}
.m{max-width:75%;padding:8px 12px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word}
.me{align-self:flex-end;background:#2563eb;color:#fff}.agent{align-self:flex-start;background:#fff;border:1px solid #ddd}
.err{align-self:center;color:#b91c1c;font-size:14px}
form{display:flex;gap:8px;padding:12px;background:#fff;border-top:1px solid #ddd}
input{flex:1;padding:10px;font:inherit;border:1px solid #ccc;border-radius:8px}button{padding:10px 16px;font:inherit}
</style></head><body>
<header>${name}</header><div id="log"></div>
<form id="f"><input id="t" autocomplete="off" placeholder="Message ${name}" maxlength="${MAX_MESSAGE_CHARS}" autofocus><button>Send</button></form>
<script>
const log=document.getElementById('log'),form=document.getElementById('f'),input=document.getElementById('t');
let session=sessionStorage.getItem('chat-session');
if(!session){session=crypto.randomUUID();sessionStorage.setItem('chat-session',session);}
function add(cls,text){const d=document.createElement('div');d.className='m '+cls;d.textContent=text;log.appendChild(d);log.scrollTop=log.scrollHeight;return d;}
const base=location.pathname.replace(/\\/$/,'');
const events=new EventSource(base+'/events?session='+encodeURIComponent(session));
events.addEventListener('agent-message',(e)=>{try{add('agent',JSON.parse(e.data).text);}catch{}});
form.addEventListener('submit',async(e)=>{e.preventDefault();const text=input.value.trim();if(!text)return;input.value='';add('me',text);
const pending=add('agent','…');
try{const r=await fetch(base+'/messages',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({message:text,session})});
const b=await r.json();if(!r.ok)throw new Error(b.error||r.status);pending.textContent=b.reply;}
catch(err){pending.remove();add('err','Could not reach the agent: '+err.message);}});
</script></body></html>`;
}

/**
 * The OpenAI `user` of a chat page session. OpenClaw derives its session key from it
 * (`agent:<id>:openai-user:chat-<session>`), which is how the schedule tools know a turn is this page's
 * (extensions/instance-tools/src/schedule.ts `conversationOf`).
 */
export const chatUser = (session: string): string => `chat-${session}`;

/**
 * Sends one message to the agent as `user` (one OpenClaw session per user): `chatUser(session)` for a
 * chat page tab; the runtime's own sessions (inbound email/SMS) use other names.
 */
export async function sendChatMessage(deps: ChatDeps, user: string, message: string): Promise<string> {
  const res = await fetch(`${deps.gatewayUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${deps.gatewayToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'openclaw',
      user,
      messages: [{ role: 'user', content: message }],
    }),
    signal: AbortSignal.timeout(300_000),
  });
  const body = (await res.json().catch(() => null)) as {
    choices?: Array<{ message?: { content?: unknown } }>;
  } | null;
  const content = body?.choices?.[0]?.message?.content;
  if (!res.ok || typeof content !== 'string') throw new Error(`gateway answered ${res.status}`);
  return content;
}

/** A chat session id: one browser tab's, chosen by the page. */
export const CHAT_SESSION_PATTERN = '^[A-Za-z0-9-]{8,64}$';

export function validateChatMessage(body: unknown): { session: string; message: string } | string {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return 'body must be a JSON object';
  const { session, message } = body as Record<string, unknown>;
  if (typeof message !== 'string' || !message.trim()) return 'message must be a non-empty string';
  if (message.length > MAX_MESSAGE_CHARS) return `message must be at most ${MAX_MESSAGE_CHARS} characters`;
  // Tabs and line breaks are text; U+0000, BEL, ESC… and lone surrogates are not.
  const problem = controlCharacterProblem(message, true);
  if (problem) return `message ${problem}`;
  if (typeof session !== 'string' || !new RegExp(CHAT_SESSION_PATTERN).test(session))
    return 'session must be 8-64 letters, digits or dashes';
  return { session, message };
}
