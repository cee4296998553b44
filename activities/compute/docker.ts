/**
 * The container compute provider (`COMPUTE_PROVIDER=docker`): each instance runs the runtime image
 * (`npm run image:build`) in its own container on this machine's Docker daemon, spoken to over the Engine API
 * on its unix socket (node:http, no client library). What the process provider cannot give: each instance
 * has its own filesystem (the image read-only), process table and network namespace, a memory and CPU limit,
 * no capabilities, and its control port published on the host's loopback only.
 *
 * Names are deterministic (`convos-<pool>-<instanceId>`, its volume `…-data`), so every call adopts what
 * exists: a create that lost its answer finds its container, a destroy of something gone is done. State lives
 * on the instance's named volume (mounted at /data, the image's STATE_DIR): a restart keeps it, destroy
 * removes container and volume. Containers carry labels (`convos-agents.pool`, `convos-agents.instance`,
 * never a secret), which is how the sweeper lists a pool.
 *
 * From inside a container, 127.0.0.1 is the container itself: loopback URLs the pool hands out
 * (POOL_API_URL, MODEL_BASE_URL) are rewritten to `host.docker.internal`, which every container resolves to
 * the host (`--add-host host.docker.internal:host-gateway`). A service on the host is reachable there only if
 * it listens on the bridge's address too (API_HOST=0.0.0.0, or the docker0 address; Ollama:
 * OLLAMA_HOST=0.0.0.0) — see docs/providers.md.
 */
import http from 'node:http';
import net from 'node:net';
import { type ComputeHandle, type ComputeProvider, ComputeRejectedError, type ComputeSpec } from './types';

export const DOCKER_LABEL_POOL = 'convos-agents.pool';
export const DOCKER_LABEL_INSTANCE = 'convos-agents.instance';
/** The runtime's port inside the container (the image's PORT). */
const CONTAINER_PORT = 8080;
/** The name every container resolves to the host. */
export const HOST_ALIAS = 'host.docker.internal';
/** Variables whose loopback URLs are rewritten to reach the host. */
const HOST_URL_VARIABLES = ['POOL_API_URL', 'MODEL_BASE_URL'];

export interface DockerProviderOptions {
  /** The runtime image (e.g. `convos-agents-runtime:latest`, what `npm run image:build` tags). */
  image: string;
  /** Memory limit per container, MB (no swap beyond it). */
  memoryMb: number;
  /** CPU limit per container (fractions allowed). */
  cpus: number;
  /** The Engine API's unix socket; default from DOCKER_HOST (unix://…) or /var/run/docker.sock. */
  socketPath?: string;
  /** Per-request timeout (ms); default 60 s (a create can wait on the daemon for a while). */
  timeoutMs?: number;
  /** Seconds a stop waits after SIGTERM before SIGKILL (the runtime stops its gateway tree in < 10 s). */
  stopTimeoutS?: number;
}

interface ContainerInspect {
  Id: string;
  /** The id of the image it was created from. */
  Image?: string;
  State: { Status: string; Running: boolean };
  HostConfig: { PortBindings?: Record<string, Array<{ HostIp?: string; HostPort?: string }> | null> };
  NetworkSettings: { Ports?: Record<string, Array<{ HostIp: string; HostPort: string }> | null> };
}

/** An image id as a runtime version: `sha256:` and its first 12 hex digits. */
const versionOf = (imageId: string) => imageId.slice(0, 'sha256:'.length + 12);

class DockerApiError extends Error {
  constructor(
    readonly status: number,
    method: string,
    path: string,
    reason: string,
  ) {
    // Method, path (a container or volume name, never a secret) and the daemon's short message.
    super(`docker ${method} ${path.split('?')[0]}: ${status} ${reason}`.slice(0, 500));
  }

  /** The same error with every one of `values` (the instance's environment) replaced, should the daemon quote one. */
  redacted(values: string[]): DockerApiError {
    let message = this.message;
    for (const value of values) if (value.length >= 4) message = message.split(value).join('[redacted]');
    const out = new DockerApiError(this.status, '', '', '');
    out.message = message;
    return out;
  }
}

export function defaultDockerSocket(env = process.env): string {
  const host = env.DOCKER_HOST;
  if (host?.startsWith('unix://')) return host.slice('unix://'.length);
  return '/var/run/docker.sock';
}

/** `http://127.0.0.1:…` → `http://host.docker.internal:…` (also localhost and [::1]); anything else as is. */
export function toContainerUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return value;
  }
  const host = url.hostname.toLowerCase();
  if (host !== 'localhost' && host !== '[::1]' && !/^127\.\d+\.\d+\.\d+$/.test(host)) return value;
  url.hostname = HOST_ALIAS;
  // URL keeps a trailing slash on a bare origin; keep the caller's form.
  const out = url.toString();
  return !value.endsWith('/') && out.endsWith('/') && url.pathname === '/' ? out.slice(0, -1) : out;
}

async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port')),
      );
    });
  });
}

export class DockerComputeProvider implements ComputeProvider {
  readonly name = 'docker';
  private readonly socketPath: string;

  constructor(private readonly opts: DockerProviderOptions) {
    this.socketPath = opts.socketPath ?? defaultDockerSocket();
  }

  /** The container's name: `convos-<pool>-<instanceId>` (Docker allows `[a-zA-Z0-9][a-zA-Z0-9_.-]*`). */
  containerName(instanceId: string, poolName: string): string {
    const name = `convos-${poolName}-${instanceId}`;
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$/.test(name))
      throw new ComputeRejectedError(
        `docker: pool "${poolName}" / instance "${instanceId}" make no container name`,
      );
    return name;
  }

  volumeName(instanceId: string, poolName: string): string {
    return `${this.containerName(instanceId, poolName)}-data`;
  }

  /** One Engine API call; answers the parsed JSON body (null when empty). */
  private request<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          socketPath: this.socketPath,
          path,
          method,
          headers: payload
            ? { 'content-type': 'application/json', 'content-length': String(payload.length) }
            : {},
          timeout: this.opts.timeoutMs ?? 60_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            let parsed: unknown = null;
            try {
              parsed = text ? JSON.parse(text) : null;
            } catch {
              parsed = text;
            }
            if (status >= 400) {
              const reason =
                parsed && typeof parsed === 'object' && 'message' in parsed
                  ? String((parsed as { message: unknown }).message)
                  : String(res.statusMessage ?? '');
              reject(new DockerApiError(status, method, path, reason));
            } else resolve({ status, body: parsed as T });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`docker ${method} ${path.split('?')[0]}: timed out`)));
      req.on('error', (err) => {
        const code = (err as NodeJS.ErrnoException).code;
        reject(
          code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'EACCES'
            ? new Error(`docker: the daemon is not reachable at ${this.socketPath} (${code})`)
            : err,
        );
      });
      req.end(payload);
    });
  }

  /** The image id `runtimeVersion` resolved: new containers run exactly the version the pool was told. */
  private pinnedImage: string | null = null;

  /**
   * The configured image's id (`sha256:` + 12 hex): a tag such as `:latest` moves when `npm run image:build`
   * builds a new one, and the pool replaces idle instances on the old id. Containers created afterwards are
   * pinned to this id until the next call. Null when the image is missing (creates will say so).
   */
  async runtimeVersion(): Promise<string | null> {
    try {
      const { body } = await this.request<{ Id: string }>(
        'GET',
        `/images/${encodeURIComponent(this.opts.image)}/json`,
      );
      this.pinnedImage = body.Id;
      return versionOf(body.Id);
    } catch (err) {
      if (err instanceof DockerApiError && err.status === 404) return null;
      throw err;
    }
  }

  private async inspect(name: string): Promise<ContainerInspect | null> {
    try {
      return (await this.request<ContainerInspect>('GET', `/containers/${name}/json`)).body;
    } catch (err) {
      if (err instanceof DockerApiError && err.status === 404) return null;
      throw err;
    }
  }

  private handle(name: string, info: ContainerInspect): ComputeHandle {
    const key = `${CONTAINER_PORT}/tcp`;
    const port =
      info.NetworkSettings.Ports?.[key]?.find((b) => b.HostIp === '127.0.0.1')?.HostPort ??
      info.HostConfig.PortBindings?.[key]?.[0]?.HostPort;
    if (!port) throw new Error(`docker: container ${name} publishes no control port`);
    return {
      ref: name,
      url: `http://127.0.0.1:${port}`,
      ...(info.Image ? { runtimeVersion: versionOf(info.Image) } : {}),
    };
  }

  private async start(name: string): Promise<ContainerInspect> {
    // 304: already running.
    await this.request('POST', `/containers/${name}/start`);
    const info = await this.inspect(name);
    if (!info) throw new Error(`docker: container ${name} vanished while starting`);
    return info;
  }

  private env(spec: ComputeSpec, port: number): string[] {
    const env: Record<string, string> = {
      // The chat links point at the published port on the host's loopback.
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      ...spec.env,
      // The image's contract: listen on the container's interfaces, state on the volume.
      HOST: '0.0.0.0',
      PORT: String(CONTAINER_PORT),
      STATE_DIR: '/data',
    };
    for (const name of HOST_URL_VARIABLES) if (env[name]) env[name] = toContainerUrl(env[name]);
    return Object.entries(env).map(([k, v]) => `${k}=${v}`);
  }

  /** Creates (or adopts) the container with its volume, published on `port` of the host's loopback. */
  private async createContainer(spec: ComputeSpec, port: number): Promise<void> {
    const name = this.containerName(spec.instanceId, spec.poolName);
    const labels = { [DOCKER_LABEL_POOL]: spec.poolName, [DOCKER_LABEL_INSTANCE]: spec.instanceId };
    const volume = this.volumeName(spec.instanceId, spec.poolName);
    // Creating an existing volume answers the existing one.
    await this.request('POST', '/volumes/create', { Name: volume, Labels: labels });
    const memory = Math.round(this.opts.memoryMb * 1024 * 1024);
    try {
      await this.request('POST', `/containers/create?name=${encodeURIComponent(name)}`, {
        Image: this.pinnedImage ?? this.opts.image,
        // A stable hostname: OpenClaw's state leases record pid + host, and reclaim a dead owner's lease only
        // on the same host, so a container made anew from the volume (restart) must keep it, or its gateway
        // waits out the lease (5 min) before it starts.
        Hostname: spec.instanceId.slice(0, 63),
        Env: this.env(spec, port),
        Labels: labels,
        ExposedPorts: { [`${CONTAINER_PORT}/tcp`]: {} },
        StopTimeout: this.opts.stopTimeoutS ?? 10,
        HostConfig: {
          // Loopback only: nothing outside this machine reaches an instance's control server.
          PortBindings: { [`${CONTAINER_PORT}/tcp`]: [{ HostIp: '127.0.0.1', HostPort: String(port) }] },
          Mounts: [{ Type: 'volume', Source: volume, Target: '/data' }],
          Memory: memory,
          MemorySwap: memory,
          NanoCpus: Math.round(this.opts.cpus * 1e9),
          PidsLimit: 1024,
          CapDrop: ['ALL'],
          SecurityOpt: ['no-new-privileges'],
          // The image is read-only; the runtime writes to its volume and to /tmp (tsx's cache) only.
          ReadonlyRootfs: true,
          Tmpfs: { '/tmp': 'rw,nosuid,nodev,size=256m' },
          ExtraHosts: [`${HOST_ALIAS}:host-gateway`],
          // No restart policy: the pool notices a dead runtime (isRunning) and restarts it itself.
          RestartPolicy: { Name: 'no' },
          LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '2' } },
        },
      });
    } catch (err) {
      // 409: a concurrent create (a retry after a lost answer) made it first; adopt it.
      if (err instanceof DockerApiError && err.status === 409) return;
      if (err instanceof DockerApiError && err.status === 404)
        throw new ComputeRejectedError(
          `docker: image ${this.opts.image} not found (build it with npm run image:build): ${err.message}`,
        );
      // Other 4xx (an invalid setting): retrying cannot fix it.
      if (err instanceof DockerApiError && err.status >= 400 && err.status < 500)
        throw new ComputeRejectedError(err.redacted(Object.values(spec.env)).message);
      throw err instanceof DockerApiError ? err.redacted(Object.values(spec.env)) : err;
    }
  }

  private async launch(spec: ComputeSpec, preferredPort?: number): Promise<ComputeHandle> {
    const name = this.containerName(spec.instanceId, spec.poolName);
    for (let attempt = 0; ; attempt++) {
      const port = attempt === 0 && preferredPort ? preferredPort : await freeLoopbackPort();
      await this.createContainer(spec, port);
      try {
        return this.handle(name, await this.start(name));
      } catch (err) {
        // The port was taken between picking and binding: drop the container and pick another.
        const taken =
          err instanceof DockerApiError &&
          /port is already allocated|address already in use/i.test(err.message);
        if (!taken || attempt >= 4) throw err;
        await this.removeContainer(name);
      }
    }
  }

  async create(spec: ComputeSpec): Promise<ComputeHandle> {
    const name = this.containerName(spec.instanceId, spec.poolName);
    const existing = await this.inspect(name);
    if (existing) {
      if (existing.State.Running) return this.handle(name, existing);
      return this.handle(name, await this.start(name));
    }
    return this.launch(spec);
  }

  /**
   * A fresh container from the instance's volume, with the spec's current environment and the configured image
   * (as the local provider relaunches its process): state survives, settings changed since are applied. The
   * control port stays the same when it is still free.
   */
  async restart(spec: ComputeSpec): Promise<ComputeHandle> {
    const name = this.containerName(spec.instanceId, spec.poolName);
    const existing = await this.inspect(name);
    let port: number | undefined;
    if (existing) {
      try {
        port = Number(new URL(this.handle(name, existing).url).port) || undefined;
      } catch {}
      await this.stopContainer(name);
      await this.removeContainer(name);
    }
    return this.launch(spec, port);
  }

  private async stopContainer(name: string): Promise<void> {
    try {
      // 304: already stopped.
      await this.request('POST', `/containers/${name}/stop?t=${this.opts.stopTimeoutS ?? 10}`);
    } catch (err) {
      if (!(err instanceof DockerApiError && err.status === 404)) throw err;
    }
  }

  private async removeContainer(name: string): Promise<void> {
    try {
      await this.request('DELETE', `/containers/${name}?force=true`);
    } catch (err) {
      // 404: gone; 409 "removal already in progress": someone else is removing it.
      if (err instanceof DockerApiError && err.status === 404) return;
      if (err instanceof DockerApiError && err.status === 409 && /in progress/i.test(err.message)) {
        for (let i = 0; i < 50 && (await this.inspect(name)); i++)
          await new Promise((r) => setTimeout(r, 200));
        return;
      }
      throw err;
    }
  }

  async destroy(instanceId: string, poolName: string): Promise<void> {
    const name = this.containerName(instanceId, poolName);
    await this.stopContainer(name);
    await this.removeContainer(name);
    try {
      await this.request('DELETE', `/volumes/${this.volumeName(instanceId, poolName)}?force=true`);
    } catch (err) {
      if (!(err instanceof DockerApiError && err.status === 404)) throw err;
    }
  }

  async isRunning(instanceId: string, poolName: string): Promise<boolean | null> {
    try {
      const info = await this.inspect(this.containerName(instanceId, poolName));
      // No container: gone (this daemon is the only place it could be).
      return info ? info.State.Running : false;
    } catch {
      // The daemon did not answer: cannot tell, the health checks decide.
      return null;
    }
  }

  /** Instance ids with a container or a volume of this pool (a volume whose container is gone is held too). */
  async list(poolName: string): Promise<string[]> {
    const filters = encodeURIComponent(JSON.stringify({ label: [`${DOCKER_LABEL_POOL}=${poolName}`] }));
    const containers = (
      await this.request<Array<{ Labels?: Record<string, string> }>>(
        'GET',
        `/containers/json?all=true&filters=${filters}`,
      )
    ).body;
    const volumes = (
      await this.request<{ Volumes: Array<{ Labels?: Record<string, string> }> | null }>(
        'GET',
        `/volumes?filters=${filters}`,
      )
    ).body.Volumes;
    const ids = new Set<string>();
    for (const item of [...containers, ...(volumes ?? [])]) {
      const labels = item.Labels ?? {};
      const id = labels[DOCKER_LABEL_INSTANCE];
      if (labels[DOCKER_LABEL_POOL] === poolName && id) ids.add(id);
    }
    return [...ids];
  }
}
