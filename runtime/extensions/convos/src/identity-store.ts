import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConversationExit } from './conversation-exit.js';
import type { XmtpEnv, XmtpIdentityKeys } from './xmtp/types.js';

/**
 * One XMTP identity per conversation, persisted under the state dir (the instance's volume, never the
 * working directory): identities/<id>.json (mode 0600: it holds the wallet and DB keys) and db/<id>.db3.
 * The files are the source of truth for idempotency: a provision with a known requestId finds its
 * identity here after any restart.
 */

export type IdentityRole = 'creator' | 'joiner';
export type ProvisionStatus = 'created' | 'joined' | 'waiting_for_acceptance';

export interface IdentityRecord {
  id: string;
  requestId: string;
  role: IdentityRole;
  env: XmtpEnv;
  agentName: string;
  /** Secrets: hex. Never logged, never returned over HTTP. */
  walletKey: string;
  dbEncryptionKey: string;
  dbPath: string;
  inboxId?: string;
  conversationId?: string;
  /** Creator: the invite we issued. Joiner: the invite we joined with. */
  inviteUrl?: string;
  /** Joiner: the tag of the invite, to recognise the group once we are added. */
  inviteTag?: string;
  status: ProvisionStatus | 'pending';
  createdAt: string;
  /** Joiner: when the creator let us in (ISO), i.e. when `status` became `joined`. */
  joinedAt?: string;
  /** Set once the conversation ended for the agent (./conversation-exit.ts): it never speaks there again. */
  exit?: { reason: ConversationExit; at: string };
  /** Convos' explode scheduled for later (ISO): the conversation ends then. */
  endsAt?: string;
}

export function keysOf(r: IdentityRecord): XmtpIdentityKeys {
  return {
    walletKey: Uint8Array.from(Buffer.from(r.walletKey, 'hex')),
    dbEncryptionKey: Uint8Array.from(Buffer.from(r.dbEncryptionKey, 'hex')),
    dbPath: r.dbPath,
  };
}

export class IdentityStore {
  private readonly dir: string;
  private readonly dbDir: string;

  constructor(readonly stateDir: string) {
    this.dir = join(stateDir, 'identities');
    this.dbDir = join(stateDir, 'db');
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await mkdir(this.dbDir, { recursive: true, mode: 0o700 });
  }

  /** A fresh identity (not yet saved): new wallet key and DB key from the OS CSPRNG. */
  newIdentity(p: { requestId: string; role: IdentityRole; env: XmtpEnv; agentName: string }): IdentityRecord {
    const id = randomBytes(8).toString('hex');
    return {
      id,
      ...p,
      // Any 32 random bytes below the curve order is a valid key; the chance of one that is not is ~2^-128.
      walletKey: randomBytes(32).toString('hex'),
      dbEncryptionKey: randomBytes(32).toString('hex'),
      dbPath: join(this.dbDir, `${id}.db3`),
      status: 'pending',
      createdAt: new Date().toISOString(),
    };
  }

  async save(r: IdentityRecord): Promise<void> {
    const file = join(this.dir, `${r.id}.json`);
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify(r, null, 2)}\n`, { mode: 0o600 });
    await rename(tmp, file);
  }

  async list(): Promise<IdentityRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: IdentityRecord[] = [];
    for (const n of names.filter((x) => x.endsWith('.json')).sort()) {
      out.push(JSON.parse(await readFile(join(this.dir, n), 'utf8')) as IdentityRecord);
    }
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }
}
