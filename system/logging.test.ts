/** The process logger never writes a credential it is handed; Temporal's log entries keep error messages. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, toLogger } from './logging';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).trim().split('\n'));
      done();
    },
  });
  return { lines, destination, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('createLogger', () => {
  it('redacts authorization headers, cookies, tokens and keys', async () => {
    const out = capture();
    const logger = createLogger({ level: 'info', destination: out.destination });
    logger.info(
      {
        req: {
          method: 'GET',
          headers: { authorization: 'Bearer SECRET-1', cookie: 'session=SECRET-2', 'x-api-key': 'SECRET-3' },
        },
        res: { headers: { 'set-cookie': 'session=SECRET-4' } },
        headers: { authorization: 'Bearer SECRET-5' },
        token: 'SECRET-6',
        provider: { apiKey: 'SECRET-7', secret: 'SECRET-8', name: 'openrouter' },
      },
      'request',
    );
    await new Promise((r) => setImmediate(r));
    expect(out.lines).toHaveLength(1);
    expect(out.lines[0]).not.toMatch(/SECRET/);
    const [line] = out.parsed();
    expect(line).toMatchObject({
      msg: 'request',
      req: { method: 'GET', headers: { authorization: '[redacted]', cookie: '[redacted]' } },
      provider: { apiKey: '[redacted]', name: 'openrouter' },
    });
  });

  it('honours the level', async () => {
    const out = capture();
    const logger = createLogger({ level: 'warn', destination: out.destination });
    logger.info('quiet');
    logger.warn('loud');
    await new Promise((r) => setImmediate(r));
    expect(out.parsed().map((l) => l.msg)).toEqual(['loud']);
  });
});

describe('toLogger', () => {
  it('writes Temporal entries with their errors readable', async () => {
    const out = capture();
    const sink = toLogger(createLogger({ level: 'info', destination: out.destination }));
    sink({
      level: 'WARN',
      message: 'Activity failed',
      meta: { activityType: 'createCompute', error: new Error('provider said no') },
      timestampNanos: 0n,
    });
    await new Promise((r) => setImmediate(r));
    expect(out.parsed()[0]).toMatchObject({
      level: 40,
      component: 'temporal',
      msg: 'Activity failed',
      activityType: 'createCompute',
      error: { message: 'provider said no' },
    });
  });
});
