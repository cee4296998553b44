/**
 * The instance lifecycle on the container provider (`COMPUTE_PROVIDER=docker`), through the real stack, with
 * the real runtime image (`npm run image:build`, reused when its content is unchanged; .ci/run builds it
 * before `npm test`): an instance boots to idle in its own container (real OpenClaw, no model: the runtime's
 * no-model endpoint answers), is claimed (a real provision and chat), survives `docker kill` (detected,
 * crashed, restarted from its volume, claimed again with the same chat), and is destroyed with its volume.
 * Also: the limits and the loopback-only port are what `docker inspect` shows, the image's health check goes
 * healthy, and the sweeper removes an orphaned container of this pool only.
 *
 * Docker is required, not optional: without a daemon this suite fails (CI installs docker.io in .ci/run).
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOCKER_LABEL_POOL, DockerComputeProvider } from '../activities/compute/docker';
import { instanceEvents, instances } from '../drizzle/schema';
import { buildRuntimeImage } from '../scripts/image-build';
import { recordSecrets, type Stack, startStack } from './stack';
import { type ClaimBody, json, newKey, shared } from './support/helpers';

// OpenClaw boots in ~40 s on an idle 2-core machine, several minutes on a loaded one.
const BOOT_MS = 420_000;
const MEMORY_MB = 2048;
const CPUS = 1;

let stack: Stack;
let provider: DockerComputeProvider;
/** When each instance's create answered (boot-to-idle is measured from there). */
const createdAt = new Map<string, number>();

const docker = (...args: string[]) =>
  execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
/** What the tests read of `docker inspect`. */
interface Inspected {
  State: { Running: boolean; Health?: { Status: string } };
  Config: { User: string; Hostname: string; Labels: Record<string, string> };
  HostConfig: {
    Memory: number;
    MemorySwap: number;
    NanoCpus: number;
    CapDrop: string[];
    ReadonlyRootfs: boolean;
  };
  Mounts: Array<{ Type: string; Name: string; Destination: string }>;
  NetworkSettings: { Ports: Record<string, Array<{ HostIp: string; HostPort: string }>> };
}
const inspect = (name: string): Inspected => JSON.parse(docker('inspect', '--type', 'container', name))[0];
const exists = (kind: 'container' | 'volume', name: string) => {
  try {
    docker(kind, 'inspect', name);
    return true;
  } catch {
    return false;
  }
};
const poolContainers = () =>
  docker('ps', '-a', '--filter', `label=${DOCKER_LABEL_POOL}=${stack.poolName}`, '--format', '{{.Names}}')
    .split('\n')
    .filter(Boolean);
const poolVolumes = () =>
  docker('volume', 'ls', '--filter', `label=${DOCKER_LABEL_POOL}=${stack.poolName}`, '--format', '{{.Name}}')
    .split('\n')
    .filter(Boolean);
const rows = (status: string) =>
  stack.database.db
    .select()
    .from(instances)
    .where(and(eq(instances.pool, stack.poolName), eq(instances.status, status)));
const events = (id: string) =>
  stack.database.db.select().from(instanceEvents).where(eq(instanceEvents.instanceId, id));

/** Resident memory of everything in the container (host `ps` through `docker top`), MB. */
function containerRss(name: string): number {
  const lines = docker('top', name, '-o', 'pid,rss').split('\n').slice(1);
  return lines.reduce((sum, line) => sum + (Number(line.trim().split(/\s+/)[1]) || 0), 0) / 1024;
}

async function chat(chatUrl: string, message: string): Promise<{ status: number; reply?: string }> {
  const res = await fetch(`${chatUrl}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ message, session: 'docker-test' }),
  });
  return { status: res.status, ...((await res.json()) as { reply?: string }) };
}

beforeAll(async () => {
  const image = await buildRuntimeImage({ log: (line) => console.log(`image: ${line}`) });
  console.log(`runtime image ${image.tag} (${image.cached ? 'reused' : 'built'} in ${image.seconds} s)`);
  const real = new DockerComputeProvider({ image: image.tag, memoryMb: MEMORY_MB, cpus: CPUS });
  provider = real;
  const create = real.create.bind(real);
  real.create = async (spec) => {
    // The instance's token reaches the container only: the post-run scan checks histories and logs for it.
    if (spec.env.INSTANCE_TOKEN) recordSecrets(spec.env.INSTANCE_TOKEN);
    const handle = await create(spec);
    if (!createdAt.has(spec.instanceId)) createdAt.set(spec.instanceId, Date.now());
    return handle;
  };
  stack = await startStack(
    shared({
      targetIdle: 1,
      maxTotal: 3,
      computeFor: () => provider,
      timings: { startDeadlineMs: BOOT_MS, healthIntervalMs: 2_000, healthFailuresAllowed: 5 },
    }),
  );
  await stack.waitFor(
    'an instance idle in its container',
    async () => (await stack.counts()).idle === 1,
    BOOT_MS,
  );
}, BOOT_MS + 600_000);

afterAll(async () => {
  await stack?.stop();
  // Nothing of this pool may outlive the suite, whatever failed.
  if (stack) {
    for (const name of poolContainers()) docker('rm', '-f', name);
    for (const name of poolVolumes()) docker('volume', 'rm', '-f', name);
  }
}, 120_000);

describe('an instance in its own container', () => {
  it('runs the image with the limits, a loopback-only port, its volume, as a non-root user', async () => {
    const [row] = await rows('idle');
    expect(row).toBeDefined();
    const id = row!.id;
    const name = provider.containerName(id, stack.poolName);
    const bootMs = Date.now() - (createdAt.get(id) ?? Date.now());
    const info = inspect(name);
    expect(info.State.Running).toBe(true);
    expect(info.Config.Labels).toMatchObject({
      [DOCKER_LABEL_POOL]: stack.poolName,
      'convos-agents.instance': id,
    });
    expect(info.Config.User).toBe('agent');
    expect(info.Config.Hostname).toBe(id.slice(0, 63));
    expect(info.HostConfig.Memory).toBe(MEMORY_MB * 1024 * 1024);
    expect(info.HostConfig.MemorySwap).toBe(MEMORY_MB * 1024 * 1024);
    expect(info.HostConfig.NanoCpus).toBe(CPUS * 1e9);
    expect(info.HostConfig.CapDrop).toEqual(['ALL']);
    expect(info.HostConfig.ReadonlyRootfs).toBe(true);
    expect(info.Mounts).toEqual([
      expect.objectContaining({
        Type: 'volume',
        Name: provider.volumeName(id, stack.poolName),
        Destination: '/data',
      }),
    ]);
    // The control port is published on the host's loopback only, and the instance's URL points at it.
    const bindings = info.NetworkSettings.Ports['8080/tcp']!;
    expect(bindings.map((b) => b.HostIp)).toEqual(['127.0.0.1']);
    expect(row!.url).toBe(`http://127.0.0.1:${bindings[0]!.HostPort}`);
    // Not reachable on any other address of this machine.
    const others = Object.values(os.networkInterfaces())
      .flat()
      .filter((a) => a && a.family === 'IPv4' && !a.internal)
      .map((a) => a!.address);
    for (const address of others) {
      const reached = await new Promise<boolean>((resolve) => {
        const socket = net.connect({ host: address, port: Number(bindings[0]!.HostPort), timeout: 2000 });
        const done = (reachedIt: boolean) => {
          socket.destroy();
          resolve(reachedIt);
        };
        socket.once('connect', () => done(true));
        socket.once('error', () => done(false));
        socket.once('timeout', () => done(false));
      });
      expect(reached, `port reachable on ${address}`).toBe(false);
    }
    // The image's HEALTHCHECK (the control server's /pool/health, token from the environment) goes healthy.
    await stack.waitFor(
      'docker health: healthy',
      async () => inspect(name).State.Health?.Status === 'healthy',
      60_000,
    );
    const stats = docker('stats', '--no-stream', '--format', '{{.MemUsage}} {{.CPUPerc}}', name);
    console.log(
      `docker: boot to idle ${(bootMs / 1000).toFixed(1)} s; RSS ${containerRss(name).toFixed(0)} MB (processes), cgroup ${stats}`,
    );
  });

  it('is claimed: a real provision, and the no-model endpoint answers its chat', async () => {
    // No refill while the rest runs: the machine's two cores boot one OpenClaw at a time.
    expect((await stack.api('PUT', '/api/pool/target', { targetIdle: 0 })).status).toBe(200);
    const res = await stack.api(
      'POST',
      '/api/pool/claim',
      { agentName: 'Harbor' },
      { 'idempotency-key': newKey() },
    );
    expect(res.status).toBe(200);
    const claim = await json<ClaimBody>(res);
    expect(claim.chatUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/chat\/[^/]+$/);
    recordSecrets(claim.chatUrl!.split('/chat/')[1]!);
    const answer = await chat(claim.chatUrl!, 'Hello?');
    expect(answer.status).toBe(200);
    expect(answer.reply).toMatch(/No language model is configured/);
    claimed = claim;
  }, 180_000);

  it(
    'is killed (docker kill): detected, crashed, restarted from its volume, claimed with the same chat',
    async () => {
      expect(claimed).toBeDefined();
      const id = claimed!.instanceId;
      const name = provider.containerName(id, stack.poolName);
      const volumeBefore = inspect(name).Mounts[0]!.Name;
      const killedAt = Date.now();
      docker('kill', name);
      await stack.waitFor(
        'crash detected and recovered',
        async () => {
          const seen = await events(id);
          return (
            seen.some((e) => e.toStatus === 'crashed') &&
            seen.some((e) => e.reason === 'runtime restarted from its state')
          );
        },
        BOOT_MS,
      );
      await stack.waitFor(
        'claimed again',
        async () =>
          (await stack.database.db.select().from(instances).where(eq(instances.id, id)))[0]?.status ===
          'claimed',
        BOOT_MS,
      );
      const info = inspect(name);
      expect(info.State.Running).toBe(true);
      expect(info.Mounts[0]!.Name).toBe(volumeBefore);
      // The same hostname as before: OpenClaw reclaims the killed gateway's state lease at once.
      expect(info.Config.Hostname).toBe(id.slice(0, 63));
      console.log(`docker: killed → claimed again in ${((Date.now() - killedAt) / 1000).toFixed(1)} s`);
      // The provision record and the chat secret live on the volume: the same chat link works again.
      const row = (await stack.database.db.select().from(instances).where(eq(instances.id, id)))[0]!;
      const chatUrl = claimed!.chatUrl!.replace(/^http:\/\/127\.0\.0\.1:\d+/, row.url!);
      await stack.waitFor(
        'the chat answers again',
        async () => (await chat(chatUrl, 'Still there?')).status === 200,
        BOOT_MS,
      );
    },
    BOOT_MS * 2 + 60_000,
  );

  it('the sweeper removes an orphaned container of this pool, not one of another pool', async () => {
    const spec = (poolName: string) => {
      const instanceId = randomUUID();
      const token = `orphan-token-${randomUUID()}`;
      recordSecrets(token);
      return {
        instanceId,
        poolName,
        env: { INSTANCE_ID: instanceId, INSTANCE_TOKEN: token, XMTP_ENV: 'off' },
      };
    };
    const orphan = spec(stack.poolName);
    const foreign = spec(`elsewhere-${randomUUID().slice(0, 8)}`);
    await provider.create(orphan);
    await provider.create(foreign);
    try {
      await stack.database.db
        .insert(instances)
        .values({ id: orphan.instanceId, pool: stack.poolName, status: 'starting', provider: 'docker' });
      expect(await provider.list(stack.poolName)).toContain(orphan.instanceId);
      expect((await stack.api('POST', '/api/pool/reconcile')).status).toBe(202);
      await stack.waitFor(
        'orphan container and volume removed',
        async () =>
          !exists('container', provider.containerName(orphan.instanceId, stack.poolName)) &&
          !exists('volume', provider.volumeName(orphan.instanceId, stack.poolName)),
        60_000,
      );
      expect(exists('container', provider.containerName(foreign.instanceId, foreign.poolName))).toBe(true);
      expect(await provider.list(stack.poolName)).not.toContain(orphan.instanceId);
    } finally {
      await provider.destroy(foreign.instanceId, foreign.poolName);
    }
    expect(exists('volume', provider.volumeName(foreign.instanceId, foreign.poolName))).toBe(false);
  }, 120_000);

  it('is destroyed: container and volume gone, nothing of the pool left', async () => {
    expect(claimed).toBeDefined();
    const id = claimed!.instanceId;
    expect((await stack.api('DELETE', `/api/pool/instances/${id}`)).status).toBe(202);
    await stack.waitFor(
      'every instance destroyed',
      async () => {
        const c = await stack.counts();
        return c.starting + c.idle + c.claiming + c.claimed + c.crashed + c.destroying + c.failed === 0;
      },
      120_000,
    );
    expect(exists('container', provider.containerName(id, stack.poolName))).toBe(false);
    expect(exists('volume', provider.volumeName(id, stack.poolName))).toBe(false);
    expect(poolContainers()).toEqual([]);
    expect(poolVolumes()).toEqual([]);
    expect(await provider.list(stack.poolName)).toEqual([]);
    expect(await rows('failed')).toEqual([]);
    // Destroying what is gone is done.
    await provider.destroy(id, stack.poolName);
    expect(await provider.isRunning(id, stack.poolName)).toBe(false);
  }, 180_000);
});

let claimed: ClaimBody | undefined;
