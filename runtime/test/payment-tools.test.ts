// The payment tools end to end inside the runtime: the instance-tools plugin's real registration and tool
// calls → the runtime's loopback outbound server (gateway token) → a stand-in pool answering as the pool's
// payment routes do (instance token). What is forwarded, with which credentials; what the agent is told for
// each answer (sent, held with its code, over the cap, outage, wrong code, unknown outcome); validation
// before the pool; and that the tools exist only when the pool pays.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import instanceTools from '../extensions/instance-tools/index.ts';
import { loadEnv } from '../src/env.ts';
import { createOutboundServer } from '../src/outbound.ts';
import { validateConfirmArgs, validateTransferArgs } from '../src/payments.ts';
import { gatewayEnvironment } from '../src/runtime.ts';

const GATEWAY_TOKEN = 'gateway-token-abcdefghijklmnopqrstuvwxyz';
const INSTANCE_TOKEN = 'instance-token-0123456789abcdef';
const INSTANCE_ID = 'inst-7';
const TO = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';
const PAYMENT_ID = '3b241101-e2bb-4255-8caf-4136c566a962';

interface PoolCall {
  method: string;
  path: string;
  auth: string | undefined;
  body: unknown;
}
let pool: Server;
let poolUrl: string;
const poolCalls: PoolCall[] = [];
let next: Array<{ status: number; body: unknown; headers?: Record<string, string> }> = [];

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : null;
}
async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
}

beforeAll(async () => {
  pool = createServer(async (req, res) => {
    poolCalls.push({
      method: req.method ?? '',
      path: req.url ?? '',
      auth: req.headers.authorization,
      body: await readBody(req),
    });
    const answer = next.shift() ?? { status: 500, body: { error: 'no answer queued', code: 'INTERNAL' } };
    res
      .writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers })
      .end(JSON.stringify(answer.body));
  });
  poolUrl = await listen(pool);
});
afterAll(() => close(pool));

const servers: Server[] = [];
afterEach(async () => {
  poolCalls.length = 0;
  next = [];
  while (servers.length) await close(servers.pop() as Server);
});

async function outbound(payments = true, poolApiUrl = poolUrl) {
  const server = createOutboundServer({
    gatewayToken: GATEWAY_TOKEN,
    instanceId: INSTANCE_ID,
    instanceToken: INSTANCE_TOKEN,
    poolApiUrl,
    channels: { email: false, sms: false },
    payments,
  });
  servers.push(server);
  return listen(server);
}

type Tool = {
  name: string;
  execute: (id: string, params: unknown) => Promise<{ details: { result: string } }>;
};

/** The tools the real plugin registers with these variables. */
function tools(vars: Record<string, string>): Map<string, Tool> {
  const found = new Map<string, Tool>();
  const saved = { ...process.env };
  Object.assign(process.env, vars);
  try {
    // Plain tools only: the schedule tools are per-turn factories (test/schedule-tools.test.ts).
    instanceTools.register({
      registerTool: (tool: Tool) => typeof tool !== 'function' && found.set(tool.name, tool),
    } as never);
  } finally {
    for (const k of Object.keys(vars)) delete process.env[k];
    Object.assign(process.env, saved);
  }
  return found;
}
async function paymentTools(payments = true, poolApiUrl = poolUrl) {
  const url = await outbound(payments, poolApiUrl);
  return tools({ CONVOS_OUTBOUND_URL: url, OPENCLAW_GATEWAY_TOKEN: GATEWAY_TOKEN, POOL_PAYMENTS: 'on' });
}
const run = async (t: Map<string, Tool>, name: string, params: unknown) =>
  (await (t.get(name) as Tool).execute('call-1', params)).details.result;

const AUTH = `Bearer ${INSTANCE_ID}:${INSTANCE_TOKEN}`;

describe('the payment tools', () => {
  it('exist only when the pool pays (POOL_PAYMENTS=on) and the runtime has an outbound server', () => {
    const base = { CONVOS_OUTBOUND_URL: 'http://127.0.0.1:1', OPENCLAW_GATEWAY_TOKEN: GATEWAY_TOKEN };
    expect([...tools({ ...base, POOL_PAYMENTS: 'on' }).keys()]).toEqual([
      'payments_allowance',
      'send_usdc',
      'confirm_payment',
    ]);
    expect([...tools(base).keys()]).toEqual([]);
    expect([...tools({ POOL_PAYMENTS: 'on' }).keys()]).toEqual([]);
  });

  it("send_usdc: a payment under the threshold is forwarded with the instance's credentials and reported sent", async () => {
    const t = await paymentTools();
    next.push({
      status: 200,
      body: {
        id: PAYMENT_ID,
        status: 'sent',
        amountUsd: '7.5',
        to: TO.toLowerCase(),
        txHash: '0xabc',
        message: 'sent',
      },
    });
    const said = await run(t, 'send_usdc', { to: TO, amountUsd: '7.50' });
    expect(said).toBe(`Sent 7.5 USDC on Base to ${TO.toLowerCase()} (transaction 0xabc).`);
    expect(poolCalls).toEqual([
      {
        method: 'POST',
        path: '/api/pool/self/payments/transfers',
        auth: AUTH,
        body: { to: TO, amountUsd: '7.50' },
      },
    ]);
    expect(said).not.toContain(INSTANCE_TOKEN);
  });

  it('a held payment: the agent is told to post the code and wait; confirm_payment forwards the code said back', async () => {
    const t = await paymentTools();
    next.push({
      status: 202,
      body: {
        id: PAYMENT_ID,
        status: 'pending',
        amountUsd: '20',
        to: TO.toLowerCase(),
        txHash: null,
        expiresAt: '2030-01-01T00:00:00.000Z',
        confirmationCode: '482913',
        message: 'held',
      },
    });
    const held = await run(t, 'send_usdc', { to: TO, amountUsd: '20' });
    expect(held).toContain('Held, not sent yet');
    expect(held).toContain('reply with the code 482913');
    expect(held).toContain(`confirm_payment with paymentId ${PAYMENT_ID}`);
    expect(held).toContain('Never confirm it yourself');

    next.push({
      status: 403,
      body: { error: "that is not this payment's code (4 attempts left)", code: 'CODE_WRONG' },
    });
    expect(await run(t, 'confirm_payment', { paymentId: PAYMENT_ID, code: '111111' })).toBe(
      "Not done: that is not this payment's code (4 attempts left)",
    );
    next.push({
      status: 200,
      body: {
        id: PAYMENT_ID,
        status: 'sent',
        amountUsd: '20',
        to: TO.toLowerCase(),
        txHash: '0xdef',
        message: 'sent',
      },
    });
    expect(await run(t, 'confirm_payment', { paymentId: PAYMENT_ID, code: ' 482913 ' })).toContain(
      'Sent 20 USDC',
    );
    expect(poolCalls.slice(1)).toEqual([
      {
        method: 'POST',
        path: `/api/pool/self/payments/transfers/${PAYMENT_ID}/confirm`,
        auth: AUTH,
        body: { code: '111111' },
      },
      {
        method: 'POST',
        path: `/api/pool/self/payments/transfers/${PAYMENT_ID}/confirm`,
        auth: AUTH,
        body: { code: '482913' },
      },
    ]);
  });

  it("passes the pool's refusals on (over the cap, outage with Retry-After, unknown outcome); hides credential problems", async () => {
    const t = await paymentTools();
    next.push({
      status: 422,
      body: { error: "this payment would exceed this agent's daily allowance", code: 'OVER_DAILY_CAP' },
    });
    expect(await run(t, 'send_usdc', { to: TO, amountUsd: '99' })).toBe(
      "Not done: this payment would exceed this agent's daily allowance",
    );
    next.push({ status: 403, body: { error: 'wrong instance id or token', code: 'FORBIDDEN' } });
    expect(await run(t, 'send_usdc', { to: TO, amountUsd: '1' })).toBe(
      "Not done: the pool refused this instance's credentials",
    );
    next.push({
      status: 502,
      body: {
        error: 'the transfer may or may not have gone out. Do not send it again',
        code: 'PAYMENT_OUTCOME_UNKNOWN',
      },
    });
    expect(await run(t, 'send_usdc', { to: TO, amountUsd: '1' })).toContain('Do not send it again');

    // The outbound server itself passes the status, the code and the Retry-After on.
    const url = await outbound();
    next.push({
      status: 503,
      body: { error: 'the payments provider is unavailable; nothing was sent', code: 'PAYMENTS_UNAVAILABLE' },
      headers: { 'retry-after': '10' },
    });
    const res = await fetch(`${url}/payments/transfer`, {
      method: 'POST',
      headers: { authorization: `Bearer ${GATEWAY_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: TO, amountUsd: '1' }),
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('10');
    expect(await res.json()).toEqual({
      error: 'the payments provider is unavailable; nothing was sent',
      code: 'payments_unavailable',
    });
    expect(poolCalls.length).toBe(4);
  });

  it('payments_allowance reads the allowance and the balances', async () => {
    const t = await paymentTools();
    next.push({
      status: 200,
      body: {
        asset: 'USDC',
        chain: 'base',
        dailyCapUsd: '20',
        spentUsd: '7.5',
        remainingUsd: '12.5',
        confirmAboveUsd: '5',
        wallet: { balances: { base: { total: '100' } } },
      },
    });
    const said = await run(t, 'payments_allowance', {});
    expect(said).toContain('Daily allowance 20 USD (USDC on Base), 7.5 used in the last 24 hours, 12.5 left');
    expect(said).toContain('above 5 USD');
    expect(said).toContain('"total":"100"');
    expect(poolCalls).toEqual([{ method: 'GET', path: '/api/pool/self/payments', auth: AUTH, body: null }]);
  });

  it('validates before the pool: addresses, amounts, codes, extra fields, control characters', async () => {
    const t = await paymentTools();
    for (const bad of [
      { to: 'vitalik.eth', amountUsd: '1' },
      { to: `${TO}\n`, amountUsd: '1' },
      { to: TO, amountUsd: '-1' },
      { to: TO, amountUsd: '0' },
      { to: TO, amountUsd: 1 },
      { to: TO, amountUsd: '1e3' },
      { to: TO, amountUsd: '12345678' },
      { to: TO, amountUsd: '1.0000001' },
      { to: TO, amountUsd: '1\u0000' },
      { to: TO, amountUsd: '1', from: TO },
    ]) {
      expect(typeof validateTransferArgs(bad), JSON.stringify(bad)).toBe('string');
      expect(await run(t, 'send_usdc', bad)).toMatch(/^Not done: /);
    }
    for (const bad of [
      { paymentId: PAYMENT_ID, code: '12345' },
      { paymentId: PAYMENT_ID, code: '12345\u0007' },
      { paymentId: '../../self-destruct', code: '123456' },
      { paymentId: PAYMENT_ID, code: '123456', amountUsd: '5' },
    ]) {
      expect(typeof validateConfirmArgs(bad), JSON.stringify(bad)).toBe('string');
      expect(await run(t, 'confirm_payment', bad)).toMatch(/^Not done: /);
    }
    expect(poolCalls).toEqual([]);
  });

  it('an unreachable pool: the transfer may or may not have been made, and is not retried', async () => {
    const t = await paymentTools(true, 'http://127.0.0.1:1');
    expect(await run(t, 'send_usdc', { to: TO, amountUsd: '1' })).toContain('may or may not have been made');
    expect(poolCalls).toEqual([]);
  });

  it('answer 409 when the pool does not pay, and need the gateway token', async () => {
    const url = await outbound(false);
    const res = await fetch(`${url}/payments`, { headers: { authorization: `Bearer ${GATEWAY_TOKEN}` } });
    expect(res.status).toBe(409);
    const on = await outbound(true);
    expect((await fetch(`${on}/payments`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    expect(
      (await fetch(`${on}/payments/transfer`, { headers: { authorization: `Bearer ${GATEWAY_TOKEN}` } }))
        .status,
    ).toBe(405);
    expect(poolCalls).toEqual([]);
  });

  it('the gateway gets POOL_PAYMENTS=on only with a pool to pay through, never the instance token', () => {
    const vars = {
      INSTANCE_ID,
      INSTANCE_TOKEN,
      PORT: '18000',
      STATE_DIR: '/tmp/payment-tools-test',
      MODEL_BASE_URL: 'http://127.0.0.1:1/v1',
      POOL_PAYMENTS: 'on',
    };
    const withPool = loadEnv({ ...vars, POOL_API_URL: 'http://pool.example:3001' });
    expect(withPool.payments).toBe(true);
    const gw = gatewayEnvironment(withPool, withPool.stateDir, GATEWAY_TOKEN, 'http://127.0.0.1:4444');
    expect(gw.POOL_PAYMENTS).toBe('on');
    expect(JSON.stringify(gw)).not.toContain(INSTANCE_TOKEN);
    expect(JSON.stringify(gw)).not.toContain('pool.example');
    expect(loadEnv(vars).payments).toBe(false);
    expect(loadEnv({ ...vars, POOL_PAYMENTS: 'off', POOL_API_URL: 'http://pool.example' }).payments).toBe(
      false,
    );
  });
});
