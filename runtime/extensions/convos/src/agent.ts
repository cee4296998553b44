/**
 * The boundary between the channel and the agent. The OpenClaw implementation (openclaw-bridge.ts)
 * routes each group to its own session and dispatches the turn; tests use a recorder.
 */

export interface InboundGroupMessage {
  /** The XMTP group id: also the OpenClaw peer id, so each group gets its own session. */
  conversationId: string;
  groupName: string;
  messageId: string;
  senderInboxId: string;
  text: string;
  sentAt: Date;
}

export interface AgentBridge {
  /** Runs one agent turn; `reply` sends text back into the same group. */
  dispatch(message: InboundGroupMessage, reply: (text: string) => Promise<void>): Promise<void>;
}

/** Logger with the levels we use; messages never carry keys, tokens or message bodies. */
export interface Log {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export const silentLog: Log = { info: () => {}, warn: () => {}, error: () => {} };
