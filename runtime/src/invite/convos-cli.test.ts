import {
  decryptConversationToken as cliDecrypt,
  encryptConversationToken as cliEncrypt,
  parseInvite as cliParse,
  verifyInviteSignature as cliVerifySignature,
  createInviteSlug,
} from '@xmtp/convos-cli/utils/invite';
import {
  parseAppData as cliParseAppData,
  serializeAppData as cliSerializeAppData,
} from '@xmtp/convos-cli/utils/metadata';
import { describe, expect, it } from 'vitest';
import { base64urlDecode, bytesToHex, hexToBytes } from './bytes.js';
import {
  createInvite,
  decodeAppData,
  decryptConversationToken,
  encodeAppData,
  encryptConversationToken,
  parseInviteUrl,
  verifyInvite,
} from './index.js';

/**
 * Cross-check against the Convos team's published helpers (@xmtp/convos-cli@0.9.1, utils/invite and
 * utils/metadata): what either side writes, the other reads and verifies.
 */

const KEY = `0x${'5a'.repeat(31)}01`;
const INBOX = 'c0ffee00'.repeat(8);
const UUID = '7f3c9a2e-1b4d-4e6f-8a9b-0c1d2e3f4a5b';
const LONG = 'a description long enough to make the CLI compress the invite '.repeat(4);

describe('cross-check with @xmtp/convos-cli utils/invite', () => {
  it('parses and verifies invites made by the CLI (plain and compressed)', async () => {
    const expiresAt = new Date('2031-05-01T00:00:00Z');
    for (const description of [undefined, LONG]) {
      const slug = await createInviteSlug(UUID, INBOX, 'AbCdEfGhIj', KEY, {
        name: 'Team',
        emoji: '🚀',
        expiresAt,
        ...(description ? { description } : {}),
      });
      const url = `https://dev.convos.org/v2?i=${slug}`;
      const ours = parseInviteUrl(url);
      // The CLI compresses whenever deflate wins (our repetitive test inbox id compresses even short ones).
      if (description) expect(ours.compression).toBe('marker');
      expect(ours.tag).toBe('AbCdEfGhIj');
      expect(ours.creatorInboxId).toBe(INBOX);
      expect(ours.expiresAt).toEqual(expiresAt);
      expect(ours.payload).toMatchObject({ name: 'Team', emoji: '🚀', expiresAfterUse: false });
      expect(ours.payload.description).toBe(description);
      verifyInvite(ours, {
        expectedSigner: { walletPrivateKey: KEY },
        expectedCreatorInboxId: INBOX,
        now: new Date('2030-01-01'),
      });
      expect(decryptConversationToken(ours.payload.conversationToken, INBOX, KEY)).toBe(UUID);
    }
  });

  it('makes invites the CLI parses, verifies and decrypts', async () => {
    for (const description of [undefined, LONG]) {
      const ours = createInvite({
        conversationId: 'd3b1f0c2a4e5f6a7b8c9d0e1f2a3b4c5',
        creatorInboxId: INBOX,
        walletPrivateKey: KEY,
        tag: 'Zz09Zz09Zz',
        env: 'production',
        name: 'Ada',
        expiresAt: new Date('2031-01-01T00:00:00Z'),
        ...(description ? { description } : {}),
      });
      if (description) expect(base64urlDecode(ours.slug.replace(/\*/g, ''))[0]).toBe(0x1f);
      const theirs = cliParse(ours.url);
      expect(theirs.tag).toBe('Zz09Zz09Zz');
      expect(theirs.creatorInboxId).toBe(INBOX);
      expect(theirs.name).toBe('Ada');
      expect(theirs.description).toBe(description);
      expect(theirs.expiresAt).toEqual(new Date('2031-01-01T00:00:00Z'));
      expect(bytesToHex(theirs.payloadBytes)).toBe(bytesToHex(ours.payloadBytes));
      expect(await cliVerifySignature(theirs, KEY)).toBe(true);
      expect(await cliVerifySignature(theirs, `0x${'77'.repeat(32)}`)).toBe(false);
      expect(cliDecrypt(Buffer.from(theirs.conversationToken), INBOX, hexToBytes(KEY))).toBe(
        'd3b1f0c2a4e5f6a7b8c9d0e1f2a3b4c5',
      );
    }
  });

  it('conversation tokens interoperate in both directions (UUID and string ids)', () => {
    for (const id of [UUID, 'group-xyz', 'x'.repeat(300)]) {
      const theirs = cliEncrypt(id, INBOX, hexToBytes(KEY));
      expect(decryptConversationToken(new Uint8Array(theirs), INBOX, KEY)).toBe(id);
      const ours = encryptConversationToken(id, INBOX, KEY);
      expect(cliDecrypt(Buffer.from(ours), INBOX, hexToBytes(KEY))).toBe(id);
    }
  });

  it('group appData metadata interoperates in both directions', () => {
    const meta = {
      tag: 'AbCdEfGhIj',
      profiles: [{ inboxId: INBOX, name: 'Ada' }],
      expiresAtUnix: 1_900_000_000,
    };
    expect(decodeAppData(cliSerializeAppData(meta))).toEqual(meta);
    const big = {
      tag: 'AbCdEfGhIj',
      profiles: Array.from({ length: 10 }, (_, i) => ({ inboxId: INBOX, name: `member ${i}` })),
    };
    expect(decodeAppData(cliSerializeAppData(big))).toEqual(big);
    const back = cliParseAppData(encodeAppData(big));
    expect(back.tag).toBe(big.tag);
    expect(back.profiles.map((p) => ({ inboxId: p.inboxId, name: p.name }))).toEqual(big.profiles);
  });
});
