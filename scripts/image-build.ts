/**
 * `npm run image:build`: builds the runtime image (runtime/Dockerfile) on this machine from reachable sources only
 * (no registry): a Debian base the project makes itself (debootstrap → `docker import`), the Node 24 binary of
 * the root `node` devDependency (the one the local provider runs), and the runtime's production dependencies
 * installed inside the build with `npm ci --omit=dev` from runtime/package-lock.json.
 *
 * Everything is cached and keyed by content: the base tarball under ~/.cache/convos-agents/image/ and the
 * base image `convos-agents-base:<hash of its recipe>`; the runtime image `convos-agents-runtime:<hash of the
 * staged build context>` (also tagged `:latest`). An unchanged tree is not rebuilt at all; a changed source
 * file rebuilds only the last layers (Docker's layer cache keeps base → node → dependencies, keyed by the
 * lockfile). On a fresh machine it installs `docker.io`/`debootstrap` with apt-get and starts `dockerd` when
 * it runs as root and they are missing.
 *
 *   npm run image:build                   # build (or reuse) the image; prints its tag
 *   npm run image:build -- --refresh-base # re-run debootstrap (security updates), then build
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const IMAGE_REPOSITORY = 'convos-agents-runtime';
export const BASE_REPOSITORY = 'convos-agents-base';

/** The base image's recipe: its hash names the cached tarball and the base image's tag. */
const BASE_RECIPE = {
  // Bookworm: glibc 2.36 runs @xmtp/node-sdk 5.x (the runtime's pin) and matches the machines that build it.
  suite: 'bookworm',
  variant: 'minbase',
  // tini as PID 1 (forwards SIGTERM, reaps re-parented helpers); CA certificates for TLS to the providers.
  include: ['ca-certificates', 'tini'],
  mirror: 'http://deb.debian.org/debian',
  // Bump when the steps below change what ends up in the tarball.
  recipe: 2,
};

export interface BuildResult {
  /** `convos-agents-runtime:<content hash>`: what DOCKER_RUNTIME_IMAGE can pin. */
  tag: string;
  base: string;
  /** Whether the image with this content hash already existed (nothing was built). */
  cached: boolean;
  seconds: number;
}

function cacheDir(): string {
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'convos-agents', 'image');
}

function has(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

function run(command: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', ...opts });
  if (result.status !== 0)
    throw new Error(
      `${command} ${args.slice(0, 2).join(' ')} … failed (exit ${result.status ?? result.signal})`,
    );
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function aptInstall(packages: string[], log: (line: string) => void) {
  if (!isRoot())
    throw new Error(`missing ${packages.join(', ')}: install them (apt-get install ${packages.join(' ')})`);
  log(`installing ${packages.join(', ')} (apt-get)`);
  run('apt-get', ['update', '-qq']);
  run('apt-get', ['install', '-y', '-qq', ...packages], {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

function dockerAnswers(): boolean {
  return (
    spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { stdio: 'ignore', timeout: 20_000 })
      .status === 0
  );
}

/**
 * A Docker daemon this user can talk to: installs docker.io and starts dockerd in the background (log in
 * /tmp/dockerd.log) when running as root on a machine without one, as CI's fresh machines are.
 */
export async function ensureDocker(log: (line: string) => void = console.log): Promise<void> {
  if (has('docker') && dockerAnswers()) return;
  if (!has('dockerd') || !has('docker')) aptInstall(['docker.io'], log);
  if (dockerAnswers()) return;
  if (!isRoot()) throw new Error('the Docker daemon is not running (start dockerd, or run as root)');
  log('starting dockerd (log: /tmp/dockerd.log)');
  const out = fs.openSync('/tmp/dockerd.log', 'a');
  const child = spawn('dockerd', [], { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  fs.closeSync(out);
  for (let i = 0; i < 60; i++) {
    if (dockerAnswers()) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error('dockerd did not answer within 60 s (see /tmp/dockerd.log)');
}

function imageExists(tag: string): boolean {
  return spawnSync('docker', ['image', 'inspect', tag], { stdio: 'ignore' }).status === 0;
}

function hashJson(value: unknown): string {
  return crypto.createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

/** The base image: from the Docker cache, else the cached tarball, else debootstrap (~25 s) → tarball → import. */
function ensureBase(log: (line: string) => void, refresh: boolean): string {
  const hash = hashJson(BASE_RECIPE);
  const tag = `${BASE_REPOSITORY}:${hash}`;
  const tarball = path.join(cacheDir(), `base-${BASE_RECIPE.suite}-${hash}.tar.gz`);
  if (!refresh && imageExists(tag)) return tag;
  if (refresh || !fs.existsSync(tarball)) {
    if (!has('debootstrap')) aptInstall(['debootstrap'], log);
    if (!isRoot()) throw new Error('debootstrap needs root (run npm run image:build as root)');
    const rootfs = fs.mkdtempSync(path.join(os.tmpdir(), 'convos-base-'));
    try {
      log(`debootstrap ${BASE_RECIPE.suite} (${BASE_RECIPE.variant} + ${BASE_RECIPE.include.join(', ')})`);
      run('nice', [
        '-n',
        '10',
        'debootstrap',
        `--variant=${BASE_RECIPE.variant}`,
        `--include=${BASE_RECIPE.include.join(',')}`,
        BASE_RECIPE.suite,
        rootfs,
        BASE_RECIPE.mirror,
      ]);
      // What a container never needs: package caches and lists, docs, man pages, translations, logs.
      for (const dir of [
        'var/cache/apt',
        'var/lib/apt/lists',
        'usr/share/doc',
        'usr/share/man',
        'usr/share/info',
        'usr/share/locale',
        'var/log',
      ]) {
        const full = path.join(rootfs, dir);
        for (const entry of fs.existsSync(full) ? fs.readdirSync(full) : [])
          fs.rmSync(path.join(full, entry), { recursive: true, force: true });
      }
      fs.mkdirSync(path.dirname(tarball), { recursive: true });
      const partial = `${tarball}.partial`;
      run('tar', ['--numeric-owner', '-C', rootfs, '-I', 'gzip -1', '-cf', partial, '.']);
      fs.renameSync(partial, tarball);
    } finally {
      fs.rmSync(rootfs, { recursive: true, force: true });
    }
  }
  log(`docker import ${path.basename(tarball)} → ${tag}`);
  run('docker', [
    'import',
    '--message',
    `debootstrap ${BASE_RECIPE.suite} ${BASE_RECIPE.variant}`,
    tarball,
    tag,
  ]);
  return tag;
}

/** Copies `from` into `to`, leaving out what never belongs in the image. */
function copyTree(from: string, to: string) {
  fs.cpSync(from, to, {
    recursive: true,
    dereference: false,
    filter: (src) => {
      const name = path.basename(src);
      if (name === 'node_modules' || name === 'test' || name === '.env' || name === '.DS_Store') return false;
      return !name.endsWith('.test.ts') && !name.endsWith('.log');
    },
  });
}

/**
 * The build context, staged from the repository's files (never its symlinked or installed node_modules):
 * the runtime's sources, the shared claim contract, the Node binary and the npm that installs the
 * dependencies inside the build.
 */
function stage(dir: string) {
  fs.copyFileSync(path.join(root, 'runtime', 'Dockerfile'), path.join(dir, 'Dockerfile'));
  const runtime = path.join(dir, 'runtime');
  fs.mkdirSync(runtime);
  for (const file of ['package.json', 'package-lock.json', 'tsconfig.json', 'healthcheck.mjs'])
    fs.copyFileSync(path.join(root, 'runtime', file), path.join(runtime, file));
  for (const sub of ['src', 'extensions', 'workspace', 'skills'])
    copyTree(path.join(root, 'runtime', sub), path.join(runtime, sub));
  copyTree(path.join(root, 'contracts'), path.join(dir, 'contracts'));
  // The Node the local provider runs (root devDependency `node`, the same version as runtime/'s).
  const node = path.join(root, 'node_modules', 'node', 'bin', 'node');
  if (!fs.existsSync(node)) throw new Error('node_modules/node/bin/node is missing: run npm ci first');
  fs.mkdirSync(path.join(dir, 'node'));
  fs.copyFileSync(fs.realpathSync(node), path.join(dir, 'node', 'node'));
  fs.chmodSync(path.join(dir, 'node', 'node'), 0o755);
  // npm for the dependency stage only (the final image has none): the one that runs this script's npm.
  const npmRoot = execFileSync('npm', ['root', '-g'], { encoding: 'utf8' }).trim();
  fs.cpSync(path.join(npmRoot, 'npm'), path.join(dir, 'npm'), { recursive: true, dereference: true });
  // The CA certificates this machine trusts, for the dependency stage only (never in the final image): on a
  // machine whose egress goes through a TLS-inspecting proxy the registry is reachable only with its CA.
  const bundle = [process.env.NODE_EXTRA_CA_CERTS, '/etc/ssl/certs/ca-certificates.crt'].find(
    (file) => file && fs.existsSync(file),
  );
  fs.writeFileSync(path.join(dir, 'build-ca.crt'), bundle ? fs.readFileSync(bundle) : '');
}

/** sha256 over every staged file's path, mode and content (sorted): the image's tag. */
function hashTree(dir: string, extra: string): string {
  const hash = crypto.createHash('sha256').update(extra);
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const relPath = path.posix.join(rel, name);
      const stat = fs.lstatSync(path.join(dir, relPath));
      if (stat.isDirectory()) walk(relPath);
      else {
        hash.update(`${relPath}\0${stat.mode & 0o111 ? 'x' : '-'}\0`);
        hash.update(
          stat.isSymbolicLink()
            ? fs.readlinkSync(path.join(dir, relPath))
            : fs.readFileSync(path.join(dir, relPath)),
        );
        hash.update('\0');
      }
    }
  };
  walk('');
  return hash.digest('hex').slice(0, 16);
}

/** How many content-hash tags of the runtime image stay on the machine (each shares most layers with the next). */
const KEEP_TAGS = 3;

/**
 * Removes all but the newest KEEP_TAGS content-hash tags, so repeated builds do not fill the disk. `docker rmi`
 * without force refuses an image a container uses, so a running instance's image stays.
 */
function pruneOldTags(current: string, log: (line: string) => void) {
  const listed = spawnSync('docker', ['images', IMAGE_REPOSITORY, '--format', '{{.Tag}}\t{{.CreatedAt}}'], {
    encoding: 'utf8',
  });
  const tags = (listed.stdout ?? '')
    .split('\n')
    .map((line) => line.split('\t'))
    .filter(([tag]) => tag && /^[0-9a-f]{16}$/.test(tag) && `${IMAGE_REPOSITORY}:${tag}` !== current)
    .sort((a, b) => String(b[1]).localeCompare(String(a[1])))
    .map(([tag]) => `${IMAGE_REPOSITORY}:${tag}`);
  for (const old of tags.slice(KEEP_TAGS - 1)) {
    if (spawnSync('docker', ['rmi', old], { stdio: 'ignore' }).status === 0) log(`removed the old ${old}`);
  }
}

export async function buildRuntimeImage(
  opts: { log?: (line: string) => void; refreshBase?: boolean } = {},
): Promise<BuildResult> {
  const log = opts.log ?? ((line: string) => console.log(`image: ${line}`));
  const started = Date.now();
  await ensureDocker(log);
  const base = ensureBase(log, opts.refreshBase ?? false);
  const context = fs.mkdtempSync(path.join(os.tmpdir(), 'convos-image-'));
  try {
    stage(context);
    const tag = `${IMAGE_REPOSITORY}:${hashTree(context, base)}`;
    const cached = imageExists(tag);
    if (cached) log(`${tag} exists (same content): nothing to build`);
    else {
      log(`docker build → ${tag}`);
      // The legacy builder (no buildx needed); --cpu-shares: the build yields to other work on the machine.
      // A proxy this machine uses is passed on to the build (Docker's predefined build arguments).
      const proxies = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy']
        .filter((name) => process.env[name])
        .flatMap((name) => ['--build-arg', name]);
      const args = [
        'build',
        '--cpu-shares',
        '256',
        '--build-arg',
        `BASE=${base}`,
        ...proxies,
        '-t',
        tag,
        context,
      ];
      run('docker', args, {
        env: { ...process.env, DOCKER_BUILDKIT: '0' },
      });
    }
    run('docker', ['tag', tag, `${IMAGE_REPOSITORY}:latest`]);
    pruneOldTags(tag, log);
    return { tag, base, cached, seconds: (Date.now() - started) / 1000 };
  } finally {
    fs.rmSync(context, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  buildRuntimeImage({ refreshBase: process.argv.includes('--refresh-base') }).then(
    (result) => {
      const size = execFileSync('docker', ['image', 'inspect', '--format', '{{.Size}}', result.tag], {
        encoding: 'utf8',
      }).trim();
      console.log(
        `image: ${result.tag} (${(Number(size) / 1e6).toFixed(0)} MB) ${result.cached ? 'reused' : 'built'} in ${result.seconds.toFixed(1)} s`,
      );
    },
    (err: Error) => {
      console.error(`image: ${err.message}`);
      process.exit(1);
    },
  );
}
