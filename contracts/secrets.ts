/**
 * The secret store as both sides see it: the names under which an instance's secrets are kept (the
 * activities write them, the API reads them) and the operations the API needs. The store itself, encrypted
 * at rest, is `activities/secret-store.ts`. Plain TypeScript with no imports.
 */

/** The instance's own token: its runtime's credential and its self-service credential at the API. */
export const INSTANCE_TOKEN = 'instanceToken';
/** The browser chat link of a claimed instance without XMTP (a bearer link). */
export const CHAT_URL = 'chatUrl';
/** The Convos invite link of a claimed instance's new conversation (a bearer link). */
export const INVITE_URL = 'inviteUrl';
/** The secret-store name of a claim's join URL (per claim: a failover never reads another claim's link). */
export const joinUrlSecretName = (claimKey: string) => `joinUrl:${claimKey}`;

/** One secret as the store keeps it: encrypted, bound to its instance and name. */
export interface StoredSecretRow {
  name: string;
  ciphertext: string;
}

/** What the API does with secrets: read an instance's, keep and drop a claim's join URL. */
export interface InstanceSecrets {
  get(instanceId: string, name: string): Promise<string | null>;
  /** Several of one instance's secrets at once: name → value, absent ones left out. */
  getMany(instanceId: string, names: string[]): Promise<Record<string, string>>;
  /**
   * `getMany` for rows another statement read from the store's table (`instance_secrets`: name, ciphertext),
   * so a caller can fold the read into a statement of its own (the claim's outcome and its links, one round trip).
   */
  openRows(instanceId: string, rows: StoredSecretRow[]): Promise<Record<string, string>>;
  put(instanceId: string, name: string, value: string): Promise<void>;
  delete(instanceId: string, name: string): Promise<void>;
}
/** The secret-store name of an inbound email's or SMS's content, until the runtime took it. */
export const inboundSecretName = (provider: string, eventId: string) => `inbound:${provider}:${eventId}`;
