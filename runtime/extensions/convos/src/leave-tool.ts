import type { ConvosService } from './service.js';

/**
 * The agent's `leave_conversation` tool: when the group asks it to go, it leaves its Convos conversation;
 * the control server then has the pool destroy the instance (runtime/CONTRACT.md: the status route reports
 * the exit). Offered only in turns of a Convos conversation: an inbound email or the local chat page must
 * not be able to make the agent leave the group.
 */

export const LEAVE_TOOL_NAME = 'leave_conversation';

/** The facts of the tool's context we look at (OpenClawPluginToolContext). */
export interface LeaveToolContext {
  messageChannel?: string;
  sessionKey?: string;
}

/** A turn of a Convos conversation: its channel, or its session (`…:convos:group:<id>`). */
export function isConvosTurn(ctx: LeaveToolContext, channelId: string): boolean {
  if (ctx.messageChannel?.toLowerCase() === channelId) return true;
  return (ctx.sessionKey ?? '').toLowerCase().includes(`:${channelId}:`);
}

function text(result: string) {
  return { content: [{ type: 'text' as const, text: result }], details: { result } };
}

export function leaveTool(service: () => Promise<ConvosService | undefined>) {
  return {
    name: LEAVE_TOOL_NAME,
    label: 'Leave the conversation',
    description:
      'Leave this conversation for good. Only when the people in it clearly ask you to leave: you cannot come back, and this agent is shut down. Say goodbye first.',
    parameters: { type: 'object', additionalProperties: false, properties: {} },
    async execute() {
      const s = await service();
      if (!s) return text('Not left: the Convos channel is not running.');
      try {
        const outcome = await s.leave();
        return text(
          outcome.left
            ? 'You left the conversation. This agent is shutting down; do not send anything else.'
            : 'The network did not confirm the leave, but this agent is shutting down and will not speak here again.',
        );
      } catch (err) {
        return text(`Not left: ${err instanceof Error ? err.message : String(err)}`);
      }
    },
  };
}
