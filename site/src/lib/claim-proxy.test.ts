import { describe, expect, it } from 'vitest';
import { normalizeComplete } from './claim-proxy';

const result = {
  instanceId: 'i1',
  agentName: 'A',
  conversationId: 'c',
  inviteUrl: 'https://dev.convos.org/v2?i=abc',
  joined: false,
  warm: true,
};

describe('normalizeComplete', () => {
  it('accepts {result} and bare results, adding a QR data URL for the invite', async () => {
    for (const raw of [{ ok: true, result }, { result }, result]) {
      const o = await normalizeComplete(raw);
      expect(o.ok).toBe(true);
      if (o.ok) {
        expect(o.result.instanceId).toBe('i1');
        expect(o.qr).toMatch(/^data:image\/png;base64,/);
      }
    }
  });

  it('maps error shapes to a status, code and message', async () => {
    expect(
      await normalizeComplete({ error: { statusCode: 503, code: 'POOL_EMPTY', message: 'no idle' } }),
    ).toMatchObject({
      ok: false,
      status: 503,
      code: 'POOL_EMPTY',
      error: 'no idle',
    });
    expect(
      await normalizeComplete({ ok: false, status: 400, error: 'bad invite', code: 'BAD_INVITE' }),
    ).toMatchObject({
      ok: false,
      status: 400,
      code: 'BAD_INVITE',
      error: 'bad invite',
    });
    expect(await normalizeComplete({})).toMatchObject({ ok: false, status: 502 });
  });
});
