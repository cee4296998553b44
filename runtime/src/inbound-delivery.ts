// What the agent answers to an inbound email or SMS reaches its conversation: the turn runs in its own
// `inbound-events` session (where it can act with its tools), and its reply is posted into the claimed Convos
// group through the channel's send path, or with XMTP off to every open chat page (server-sent events). The
// turn is what the inbound queue retries (src/inbound.ts); once the agent took it, posting the reply is tried a
// few times and then given up (logged) rather than running the turn again, which would answer twice.
import type { InboundRequest } from '../../contracts/runtime.ts';

export interface InboundDeliveryDeps {
  /** One agent turn with this text; its reply (throws when the agent could not take it). */
  turn: (text: string) => Promise<string>;
  /** Posts the reply where the conversation is; throws when it could not. */
  post: (reply: string, request: InboundRequest) => Promise<void>;
  log?: (line: string) => void;
  /** Waits between attempts to post (the last failure gives up). */
  postRetryDelaysMs?: readonly number[];
}

const DEFAULT_POST_RETRIES = [2000, 5000, 15_000] as const;

export function inboundDispatch(deps: InboundDeliveryDeps) {
  const delays = deps.postRetryDelaysMs ?? DEFAULT_POST_RETRIES;
  return async (text: string, request: InboundRequest): Promise<void> => {
    const reply = (await deps.turn(text)).trim();
    // Nothing to say (the agent acted with its tools only): nothing is posted.
    if (!reply) return;
    for (let attempt = 0; ; attempt++) {
      try {
        await deps.post(reply, request);
        return;
      } catch (err) {
        const delay = delays[attempt];
        if (delay === undefined) {
          deps.log?.(
            `[runtime] inbound ${request.eventId}: the reply could not be posted (${(err as Error).message}); given up`,
          );
          return;
        }
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  };
}
