/**
 * Payments through the pool against the real stack, wired from configuration (BANKR_API_KEY and
 * BANKR_BASE_URL pointed at the Bankr stand-in): a claimed instance pays USDC on Base with its own token,
 * within its daily cap (over it: refused, nothing reaches Bankr, audited), never beyond it under concurrent
 * requests; above the threshold a transfer is held until its one-time code comes back (wrong, reused, another
 * instance's, expired codes refused); Bankr's outage answers 503 with Retry-After and records nothing as
 * sent; a lost answer is never resent; hostile input is a 400 that records nothing.
 */
import { and, asc, eq, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runtimeEnvironment } from '../activities/compute';
import { SecretStore, secretKeyFromBase64 } from '../activities/secret-store';
import { buildApp } from '../api/app';
import { INSTANCE_TOKEN } from '../contracts/secrets';
import { instanceEvents, instances, payments } from '../drizzle/schema';
import { recordSecrets, type Stack, startStack } from './stack';
import { type BankrStandin, startBankrStandin } from './standins/bankr-standin';
import { claimOne, type ErrorBody, json, shared } from './support/helpers';

/** An EIP-55 example address (its mixed case is a valid checksum). */
const TO = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';
const CAP = '50';
const CONFIRM_ABOVE = '10';

let stack: Stack;
let bankr: BankrStandin;
let secrets: SecretStore;

beforeAll(async () => {
  bankr = await startBankrStandin({ usdc: '10000' });
  recordSecrets(bankr.apiKey);
  stack = await startStack(
    shared({
      targetIdle: 3,
      maxTotal: 30,
      env: {
        BANKR_API_KEY: bankr.apiKey,
        BANKR_BASE_URL: bankr.url,
        PAYMENTS_DAILY_CAP_USD: CAP,
        PAYMENTS_CONFIRM_ABOVE_USD: CONFIRM_ABOVE,
      },
    }),
  );
  secrets = new SecretStore(stack.database.db, secretKeyFromBase64(stack.secretsKey));
});
afterAll(async () => {
  await stack?.stop();
  await bankr?.close();
});

interface Payment {
  id: string;
  status: string;
  amountUsd: string;
  to: string;
  txHash: string | null;
  expiresAt: string | null;
  confirmationCode?: string;
  message: string;
}

/** A claimed instance (the read model says so) and its `Bearer <id>:<token>` credentials. */
async function claimed(name: string): Promise<{ id: string; creds: string }> {
  const { instanceId } = await claimOne(stack, name);
  // The payment routes read the read model: wait until it says claimed.
  await stack.waitFor(`${name} claimed`, async () => {
    const [row] = await stack.database.db.select().from(instances).where(eq(instances.id, instanceId));
    return row?.status === 'claimed';
  });
  return { id: instanceId, creds: `${instanceId}:${await secrets.get(instanceId, INSTANCE_TOKEN)}` };
}

function pay(creds: string, body: unknown, path = '/api/pool/self/payments/transfers') {
  return fetch(`${stack.apiUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${creds}` },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}
const confirm = (creds: string, paymentId: string, code: string) =>
  pay(creds, { code }, `/api/pool/self/payments/transfers/${paymentId}/confirm`);

const ledgerOf = (instanceId: string) =>
  stack.database.db
    .select()
    .from(payments)
    .where(eq(payments.instanceId, instanceId))
    .orderBy(asc(payments.createdAt));
const paymentEvents = async (instanceId: string) =>
  (
    await stack.database.db
      .select()
      .from(instanceEvents)
      .where(and(eq(instanceEvents.instanceId, instanceId), like(instanceEvents.eventKey, 'payment-%')))
      .orderBy(asc(instanceEvents.id))
  ).map((e) => ({ action: (e.details as { action: string }).action, reason: e.reason, details: e.details }));
const sentTo = (address: string) => bankr.transfers.filter((t) => t.recipientAddress === address);

describe('payments through the pool', () => {
  it('sends a payment under the cap, audited; refuses one over it without calling Bankr, audited', async () => {
    const a = await claimed('Payer');
    const res = await pay(a.creds, { to: TO, amountUsd: '7.25' });
    expect(res.status).toBe(200);
    const sent = await json<Payment>(res);
    expect(sent).toMatchObject({ status: 'sent', amountUsd: '7.25', to: TO.toLowerCase() });
    expect(sent.txHash).toMatch(/^0x[0-9a-f]{64}$/);
    expect(bankr.transfers.at(-1)).toMatchObject({
      recipientAddress: TO.toLowerCase(),
      amount: '7.25',
      txHash: sent.txHash,
    });

    const before = bankr.transfers.length;
    const over = await pay(a.creds, { to: TO, amountUsd: '43' }); // 7.25 + 43 > 50
    expect(over.status).toBe(422);
    const refusal = await json<ErrorBody>(over);
    expect(refusal.code).toBe('OVER_DAILY_CAP');
    expect(refusal.error).toContain('42.75 USD left');
    expect(bankr.transfers.length).toBe(before);
    expect(bankr.requests.filter((r) => r === 'POST /wallet/transfer').length).toBe(before);

    const ledger = await ledgerOf(a.id);
    expect(ledger.map((p) => [p.status, p.amountMicros])).toEqual([
      ['sent', 7_250_000n],
      ['refused', 43_000_000n],
    ]);
    const events = await paymentEvents(a.id);
    expect(events.map((e) => e.action)).toEqual(['requested', 'sent', 'requested', 'refused']);
    expect(events[1]?.details).toMatchObject({
      amountUsd: '7.25',
      asset: 'USDC',
      chain: 'base',
      destination: TO.toLowerCase(),
      txHash: sent.txHash,
    });
    expect(events[3]?.reason).toBe(`payment of 43 USDC to 0x5aae…eaed refused: over the daily cap`);
    const trail = JSON.stringify(events);
    expect(trail).not.toContain(bankr.apiKey);

    // The allowance shows what is left; the wallet is Bankr's answer.
    const allowance = await fetch(`${stack.apiUrl}/api/pool/self/payments`, {
      headers: { authorization: `Bearer ${a.creds}` },
    });
    expect(allowance.status).toBe(200);
    expect(await allowance.json()).toMatchObject({
      dailyCapUsd: CAP,
      spentUsd: '7.25',
      remainingUsd: '42.75',
      confirmAboveUsd: CONFIRM_ABOVE,
      wallet: { balances: { base: { tokenBalances: [{ token: { symbol: 'USDC' } }] } } },
    });
  });

  it('never exceeds the cap under 10 concurrent requests', async () => {
    const a = await claimed('Rusher');
    const target = '0x00000000000000000000000000000000000000aa';
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => pay(a.creds, { to: target, amountUsd: '8' })),
    );
    const statuses = answers.map((r) => r.status).sort();
    // 6 × 8 = 48 fits under 50; a seventh would not.
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 422, 422, 422, 422]);
    expect(sentTo(target).length).toBe(6);
    const ledger = await ledgerOf(a.id);
    expect(ledger.filter((p) => p.status === 'sent').length).toBe(6);
    expect(ledger.filter((p) => p.status === 'refused').length).toBe(4);
  });

  it('holds a transfer above the threshold until its code is said back; wrong, foreign and reused codes fail', async () => {
    const a = await claimed('Holder');
    const b = await claimed('Stranger');
    const target = '0x00000000000000000000000000000000000000bb';
    const res = await pay(a.creds, { to: target, amountUsd: '20' });
    expect(res.status).toBe(202);
    const held = await json<Payment>(res);
    expect(held.status).toBe('pending');
    expect(held.confirmationCode).toMatch(/^\d{6}$/);
    expect(held.message).toContain(held.confirmationCode);
    expect(sentTo(target)).toEqual([]);
    const code = held.confirmationCode as string;
    const wrong = code === '000000' ? '000001' : '000000';

    // Held transfers count against the cap: 20 held + 31 > 50.
    expect((await pay(a.creds, { to: target, amountUsd: '31' })).status).toBe(422);

    const bad = await confirm(a.creds, held.id, wrong);
    expect(bad.status).toBe(403);
    expect((await json<ErrorBody>(bad)).code).toBe('CODE_WRONG');
    // Another instance's token cannot confirm it, even with the right code.
    const foreign = await confirm(b.creds, held.id, code);
    expect(foreign.status).toBe(404);
    expect(sentTo(target)).toEqual([]);

    const ok = await confirm(a.creds, held.id, code);
    expect(ok.status).toBe(200);
    expect(await json<Payment>(ok)).toMatchObject({ id: held.id, status: 'sent', amountUsd: '20' });
    expect(sentTo(target).map((t) => t.amount)).toEqual(['20']);

    const reused = await confirm(a.creds, held.id, code);
    expect(reused.status).toBe(409);
    expect((await json<ErrorBody>(reused)).code).toBe('PAYMENT_NOT_PENDING');
    expect(sentTo(target).length).toBe(1);

    const [row] = await ledgerOf(a.id);
    expect(row).toMatchObject({ status: 'sent', confirmCodeHash: null, confirmAttempts: 1 });
    const events = await paymentEvents(a.id);
    expect(events.map((e) => e.action)).toEqual([
      'requested',
      'held',
      'requested',
      'refused',
      'wrong-code-1',
      'confirmed',
      'sent',
    ]);
    expect(JSON.stringify(events)).not.toContain(code);
  });

  it('ends a held transfer after 5 wrong codes, or when its code expires', async () => {
    const a = await claimed('Guesser');
    const target = '0x00000000000000000000000000000000000000cc';
    const first = await json<Payment>(await pay(a.creds, { to: target, amountUsd: '11' }));
    const code = first.confirmationCode as string;
    const wrong = code === '123456' ? '654321' : '123456';
    const codes: string[] = [];
    for (let i = 0; i < 5; i++)
      codes.push((await json<ErrorBody>(await confirm(a.creds, first.id, wrong))).error);
    expect(codes[4]).toContain('the payment is cancelled');
    expect((await confirm(a.creds, first.id, code)).status).toBe(409);

    const second = await json<Payment>(await pay(a.creds, { to: target, amountUsd: '12' }));
    await stack.database.db
      .update(payments)
      .set({ confirmExpiresAt: new Date(Date.now() - 1000) })
      .where(eq(payments.id, second.id));
    const late = await confirm(a.creds, second.id, second.confirmationCode as string);
    expect(late.status).toBe(409);
    expect((await json<ErrorBody>(late)).error).toContain('expired');
    expect(sentTo(target)).toEqual([]);
    expect((await ledgerOf(a.id)).map((p) => p.status)).toEqual(['refused', 'expired']);
  });

  it('answers a Bankr outage with 503 and Retry-After, records nothing as sent; never resends a lost answer', async () => {
    const a = await claimed('Unlucky');
    const target = '0x00000000000000000000000000000000000000dd';
    bankr.faults.failNext(/POST \/wallet\/transfer/, '5xx');
    const down = await pay(a.creds, { to: target, amountUsd: '5' });
    expect(down.status).toBe(503);
    expect(Number(down.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await json<ErrorBody>(down)).code).toBe('PAYMENTS_UNAVAILABLE');
    expect(sentTo(target)).toEqual([]);
    expect((await ledgerOf(a.id)).map((p) => p.status)).toEqual(['failed']);
    expect((await paymentEvents(a.id)).map((e) => e.action)).toEqual(['requested', 'failed']);

    // The portfolio read too.
    bankr.faults.failNext(/GET \/wallet\/portfolio/, '5xx');
    const read = await fetch(`${stack.apiUrl}/api/pool/self/payments`, {
      headers: { authorization: `Bearer ${a.creds}` },
    });
    expect(read.status).toBe(503);
    expect(read.headers.get('retry-after')).toBeTruthy();

    // Bankr moved the money but the answer was lost: `unknown`, still counted, not resent.
    bankr.faults.failNext(/POST \/wallet\/transfer/, 'lost');
    const lost = await pay(a.creds, { to: target, amountUsd: '9' });
    expect(lost.status).toBe(502);
    expect((await json<ErrorBody>(lost)).code).toBe('PAYMENT_OUTCOME_UNKNOWN');
    expect(sentTo(target).map((t) => t.amount)).toEqual(['9']);
    expect((await ledgerOf(a.id)).map((p) => p.status)).toEqual(['failed', 'unknown']);
    const allowance = (await (
      await fetch(`${stack.apiUrl}/api/pool/self/payments`, {
        headers: { authorization: `Bearer ${a.creds}` },
      })
    ).json()) as { spentUsd: string };
    expect(allowance.spentUsd).toBe('9');
    // Bankr's own refusal (a paused wallet): 422 with its reason, nothing moved.
    bankr.paused = true;
    try {
      const paused = await pay(a.creds, { to: target, amountUsd: '1' });
      expect(paused.status).toBe(422);
      expect((await json<ErrorBody>(paused)).error).toContain('wallet is paused');
    } finally {
      bankr.paused = false;
    }
    expect(sentTo(target).length).toBe(1);
    expect((await ledgerOf(a.id)).map((p) => p.status)).toEqual(['failed', 'unknown', 'failed']);
  });

  it('refuses hostile input with 400 and records nothing', async () => {
    const a = await claimed('Hostile');
    const before = bankr.transfers.length;
    const bodies: unknown[] = [
      { to: TO, amountUsd: '-5' },
      { to: TO, amountUsd: '0' },
      { to: TO, amountUsd: '0.000000' },
      { to: TO, amountUsd: '0.0000001' },
      { to: TO, amountUsd: '99999999999999999999' },
      { to: TO, amountUsd: '1e3' },
      { to: TO, amountUsd: 'ten' },
      { to: TO, amountUsd: 5 },
      { to: TO, amountUsd: 'NaN' },
      { to: TO, amountUsd: ' 5' },
      { to: TO, amountUsd: '5\u0000' },
      { to: TO, amountUsd: '5\n' },
      { to: 'vitalik.eth', amountUsd: '1' },
      { to: `${TO}\r\n`, amountUsd: '1' },
      { to: TO.slice(0, -1), amountUsd: '1' },
      { to: TO.replace('0x5aA', '0x5aa'), amountUsd: '1' }, // a broken EIP-55 checksum
      { to: `0x${'0'.repeat(40)}`, amountUsd: '1' },
      { to: TO, amountUsd: '1', from: TO },
      { to: TO },
      [],
      '{"to":',
    ];
    for (const body of bodies) {
      const res = await pay(a.creds, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((await json<ErrorBody>(res)).code).toMatch(/^BAD_/);
    }
    for (const code of ['12345', 'abcdef', '1234567', '12345\u0007']) {
      const res = await confirm(a.creds, '3b241101-e2bb-4255-8caf-4136c566a962', code);
      expect(res.status, code).toBe(400);
    }
    expect((await confirm(a.creds, 'not-a-uuid', '123456')).status).toBe(400);
    expect(await ledgerOf(a.id)).toEqual([]);
    expect(bankr.transfers.length).toBe(before);
  });

  it('tells every runtime the pool pays (POOL_PAYMENTS=on), never the Bankr key', () => {
    const env = runtimeEnvironment(stack.config, {});
    expect(env.POOL_PAYMENTS).toBe('on');
    expect(JSON.stringify(env)).not.toContain(bankr.apiKey);
    expect(
      runtimeEnvironment({ ...stack.config, providers: { ...stack.config.providers, bankr: null } }, {}),
    ).not.toHaveProperty('POOL_PAYMENTS');
  });

  it('answers 401/403 for other credentials, 409 when the pool has no Bankr key or the instance is not claimed', async () => {
    const a = await claimed('Owner');
    expect((await pay(stack.apiKey, { to: TO, amountUsd: '1' })).status).toBe(403);
    const anonymous = await fetch(`${stack.apiUrl}/api/pool/self/payments`);
    expect(anonymous.status).toBe(401);

    const bare = await buildApp({
      db: stack.database.db,
      temporal: stack.temporal,
      secrets,
      config: stack.config,
      apiKey: stack.apiKey,
    });
    try {
      const res = await bare.inject({
        method: 'POST',
        url: '/api/pool/self/payments/transfers',
        headers: { authorization: `Bearer ${a.creds}` },
        payload: { to: TO, amountUsd: '1' },
      });
      expect(res.statusCode).toBe(409);
      expect(res.json()).toEqual({
        code: 'PAYMENTS_NOT_ENABLED',
        error: 'payments are not configured on this pool (BANKR_API_KEY is not set)',
      });
    } finally {
      await bare.close();
    }

    await stack.waitFor('an idle instance', async () => (await stack.counts()).idle > 0);
    const [row] = await stack.database.db
      .select({ id: instances.id })
      .from(instances)
      .where(and(eq(instances.pool, stack.poolName), eq(instances.status, 'idle')));
    const idle = row?.id;
    expect(idle).toBeTruthy();
    const idleCreds = `${idle}:${await secrets.get(idle as string, INSTANCE_TOKEN)}`;
    const res = await pay(idleCreds, { to: TO, amountUsd: '1' });
    expect(res.status).toBe(409);
    expect((await json<ErrorBody>(res)).code).toBe('NOT_CLAIMED');
  });
});
