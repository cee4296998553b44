import type { ConversationExit } from '../../../../contracts/runtime.ts';
import type { XmtpMessage } from './xmtp/types.js';

/**
 * How the agent's conversation ends for it, decided from what the network says. Pure: the runner feeds it
 * the messages of its conversation and the group's state, and applies the answer (the control server then
 * has the pool destroy the instance: an agent without its conversation has nothing left to do).
 *   removed_from_conversation — a group_updated message lists us among the removed, or the group is no
 *                               longer active for us (removed while we were offline)
 *   conversation_ended        — Convos' explode: an explode_settings message whose time has come (the
 *                               creator sends it, then removes everyone); one set in the future ends it then
 *   left_conversation         — our own leave went through (the runner records it when it asks to leave)
 */

export type { ConversationExit } from '../../../../contracts/runtime.ts';

export type ExitVerdict = { exit: ConversationExit } | { endsAt: Date } | null;

/** What one message of our conversation means for it. */
export function exitFromMessage(msg: XmtpMessage, ourInboxId: string, now: Date): ExitVerdict {
  if (msg.explode) {
    return msg.explode.expiresAt.getTime() <= now.getTime()
      ? { exit: 'conversation_ended' }
      : { endsAt: msg.explode.expiresAt };
  }
  if (msg.groupUpdated) {
    if (msg.groupUpdated.removedInboxIds.includes(ourInboxId)) return { exit: 'removed_from_conversation' };
    if (msg.groupUpdated.leftInboxIds.includes(ourInboxId)) return { exit: 'left_conversation' };
  }
  return null;
}

/**
 * What the group's state means: inactive is the end of it (an explode whose time has passed, else a
 * removal); an explode time that has passed ends it too, even before the creator's removal arrives.
 */
export function exitFromState(active: boolean, endsAt: Date | null, now: Date): ConversationExit | null {
  const ended = endsAt !== null && endsAt.getTime() <= now.getTime();
  if (ended) return 'conversation_ended';
  if (!active) return 'removed_from_conversation';
  return null;
}
