/**
 * Issue 12.5, the whole way: an agent removed from its group self-destructs through the pool, and everything
 * it held is released. The pool runs real OpenClaw runtimes through the local compute provider (an instant
 * stand-in model); their Convos channel runs on the file-backed stand-in XMTP network, which this test opens
 * too. A host (the channel's own service, in this process) creates a group; a claim joins it with the
 * host's invite; the host lets the agent in, then removes it. The runtime sees the removal, tells the pool
 * (`POST /api/pool/self-destruct`), and the instance is destroyed with the reason in its audit trail: its
 * runtime and gateway processes are gone, its state directory, resources and secrets released, and it holds
 * no place in the pool.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localRuntime } from '../activities/compute';
import { LocalComputeProvider } from '../activities/compute/local';
import { SecretStore, secretKeyFromBase64 } from '../activities/secret-store';
import { INSTANCE_TOKEN } from '../contracts/secrets';
import { ConvosService } from '../runtime/extensions/convos/src/service';
import { type FileGroup, FileNetwork } from '../runtime/extensions/convos/src/xmtp/file-network';
import { parseInviteUrl } from '../runtime/src/invite/index';
import { startModelServer } from '../runtime/test/support/model-server';
import { type Stack, startStack } from './stack';
import { type ClaimBody, json, newKey, shared } from './support/helpers';

// OpenClaw boots in ~40 s on an idle 2-core machine, several minutes on a loaded one.
const BOOT_MS = 420_000;

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'convos-conversation-exit-'));
const instancesDir = path.join(root, 'instances');
const net = new FileNetwork(path.join(root, 'network'));

const linux = process.platform === 'linux';
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Linux: the live processes whose environment names this state directory (the runtime, its gateway). */
function processesOf(stateDir: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = fs.readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      if (
        environ.some((v) => v === `STATE_DIR=${stateDir}` || v.startsWith(`OPENCLAW_STATE_DIR=${stateDir}`))
      )
        pids.push(Number(entry));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return pids;
}

interface Detail {
  status: string;
  conversationId: string | null;
  lastError: string | null;
  destroyedAt: string | null;
  resources: Array<{ kind: string; status: string; releasedAt: string | null }>;
  events: Array<{ from: string | null; to: string; actor: string; reason: string }>;
}

let stack: Stack;
let local: LocalComputeProvider;
let model: Awaited<ReturnType<typeof startModelServer>>;
let host: ConvosService;

beforeAll(async () => {
  const t0 = Date.now();
  model = await startModelServer(() => 'Hello from the stand-in model.');
  local = new LocalComputeProvider({ instancesDir, ...localRuntime({ LOCAL_RUNTIME: 'openclaw' }) });
  stack = await startStack(
    shared({
      targetIdle: 1,
      maxTotal: 2,
      xmtpEnv: 'dev',
      computeFor: () => local,
      // The runtimes' Convos channel on the file network (the runtime hands it on to its gateway).
      runtimeEnv: { MODEL_BASE_URL: model.url, MODEL: 'stand-in', CONVOS_TEST_NETWORK_DIR: net.dir },
      timings: { startDeadlineMs: BOOT_MS, healthIntervalMs: 2_000, healthFailuresAllowed: 5 },
    }),
  );
  // The person's side: the Convos channel's own service as a group's creator, on the same network.
  host = new ConvosService({
    stateDir: path.join(root, 'host'),
    env: 'dev',
    factory: net.factory(),
    agent: { dispatch: async () => {} },
  });
  await stack.waitFor('a real runtime idle', async () => (await stack.counts()).idle === 1, BOOT_MS);
  console.log(`conversation exit: the first runtime idle after ${Date.now() - t0} ms`);
}, BOOT_MS + 60_000);

afterAll(async () => {
  await host?.stop();
  await stack?.stop();
  await local?.stopAll();
  await model?.close();
  // ~60 MB of gateway state per runtime.
  fs.rmSync(root, { recursive: true, force: true });
}, 120_000);

const detail = async (id: string) => json<Detail>(await stack.api('GET', `/api/pool/instances/${id}`));
const idleIds = async () =>
  (await json<{ idle: Array<{ id: string }> }>(await stack.api('GET', '/api/pool/agents'))).idle.map(
    (i) => i.id,
  );

describe('an agent removed from its group', () => {
  it(
    'self-destructs through the pool and releases everything it held',
    async () => {
      const t0 = Date.now();
      const took: Record<string, number> = {};
      const created = await host.provision({ requestId: 'host-group', agentName: 'Host', instructions: '' });
      const conversationId = created.conversationId ?? '';
      const hostInbox = parseInviteUrl(created.inviteUrl ?? '').creatorInboxId;
      expect(conversationId).toMatch(/^[0-9a-f]+$/);

      const [idle] = await idleIds();
      const res = await stack.api(
        'POST',
        '/api/pool/claim',
        { agentName: 'Wren', joinUrl: created.inviteUrl },
        { 'idempotency-key': newKey('exit') },
      );
      expect(res.status).toBe(200);
      const claimed = await json<ClaimBody>(res);
      expect(claimed.instanceId).toBe(idle);
      const id = claimed.instanceId;
      const stateDir = path.join(instancesDir, id, 'state');

      // The host lets the agent in (its channel answers the agent's join request): the runtime reports the
      // acceptance, if the claim did not already see it, and the instance is claimed in the host's group.
      await stack.waitFor(
        'the join accepted',
        async () => {
          const d = await detail(id);
          return d.status === 'claimed' && d.conversationId === conversationId;
        },
        120_000,
      );
      took.joined = Date.now() - t0;
      const members = net.read(conversationId)?.members ?? [];
      expect(members).toHaveLength(2);
      const agentInbox = members.find((m) => m !== hostInbox) ?? '';
      const { pid } = JSON.parse(fs.readFileSync(path.join(instancesDir, id, 'launch.json'), 'utf8')) as {
        pid: number;
      };
      expect(alive(pid)).toBe(true);
      // The runtime and its gateway.
      if (linux) expect(processesOf(stateDir).length).toBeGreaterThanOrEqual(2);
      const secrets = new SecretStore(stack.database.db, secretKeyFromBase64(stack.secretsKey));
      expect(await secrets.get(id, INSTANCE_TOKEN)).toBeTruthy();

      // The host removes the agent (its own view of the group, as the Convos app would).
      const hostGroup = (await net.client(hostInbox).getConversationById(conversationId)) as FileGroup;
      await hostGroup.removeMembers([agentInbox]);
      const removedAt = Date.now();
      await stack.waitFor('destroyed', async () => (await detail(id)).status === 'destroyed', 120_000);
      took.destroyed = Date.now() - removedAt;

      const after = await detail(id);
      expect(after.destroyedAt).not.toBeNull();
      // The instance itself asked, for the reason the runtime gave: the audit trail says so.
      expect(after.events).toContainEqual(
        expect.objectContaining({
          from: 'claimed',
          to: 'destroying',
          actor: 'instance',
          reason: 'removed from the conversation',
        }),
      );
      expect(after.events).toContainEqual(expect.objectContaining({ from: 'destroying', to: 'destroyed' }));
      // Released: compute and every other resource, the secrets, the runtime and gateway processes, the state
      expect(after.resources.find((r) => r.kind === 'compute')).toMatchObject({ status: 'released' });
      expect(after.resources.filter((r) => r.status === 'active')).toEqual([]);
      expect(await secrets.get(id, INSTANCE_TOKEN)).toBeNull();
      await stack.waitFor(
        'its processes gone',
        async () => !alive(pid) && (!linux || processesOf(stateDir).length === 0),
        30_000,
      );
      expect(fs.existsSync(path.join(instancesDir, id))).toBe(false);
      // The host's group goes on without the agent.
      expect(net.read(conversationId)?.members).toEqual([hostInbox]);

      // The destroyed instance holds no place in the pool: nothing claimed, and its replacement (started when the
      // claim took the idle one) is the pool's only member.
      const counts = await stack.counts();
      expect(counts.claimed).toBe(0);
      expect(counts.destroying).toBe(0);
      expect(counts.idle + counts.starting).toBe(1);
      expect((await idleIds()).includes(id)).toBe(false);
      console.log(
        `conversation exit: claim ${claimed.status}, lastError ${JSON.stringify(after.lastError)}, ` +
          `ms ${JSON.stringify(took)}`,
      );
    },
    BOOT_MS + 300_000,
  );
});
