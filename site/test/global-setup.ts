// Browser-test setup: start the real stack (or use SITE_TEST_API_URL/SITE_TEST_API_KEY for an already
// running one), build the site, start its server, and hand the URLs to the tests.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startSite, stopProc } from './site-server';

declare module 'vitest' {
  export interface ProvidedContext {
    siteUrl: string;
    apiUrl: string;
    apiKey: string;
    /** A correctly signed Convos dev invite ('' when testing against an external API). */
    joinUrl: string;
    /** A second site on a pool without XMTP (chat links), or '' when not available. */
    chatSiteUrl: string;
    chatApiUrl: string;
    chatApiKey: string;
    /** The OpenRouter stand-in of the XMTP dev pool (its test controls), or ''. */
    openrouterUrl: string;
    /** The main site's environments (SITE_ENVIRONMENTS): the dev pool first, then the chat pool; or []. */
    environments: string[];
  }
}

const siteDir = resolve(import.meta.dirname, '..');
const rootDir = resolve(siteDir, '..');

interface StackInfo {
  apiUrl: string;
  apiKey: string;
  joinUrl?: string;
  openrouterUrl?: string;
}

function startStackProcess(mode: 'dev' | 'off'): Promise<StackInfo & { proc: ChildProcess }> {
  // Node itself (the root's Node 24) with tsx as a loader, not the `tsx` wrapper: the wrapper runs the
  // script in a child process, and our SIGTERM must reach the script so it stops its Temporal dev server.
  const node = resolve(rootDir, 'node_modules/.bin/node');
  const proc = spawn(node, ['--import', 'tsx', resolve(siteDir, 'test/stack-runner.ts'), mode], {
    cwd: rootDir,
    env: { ...process.env, PATH: `${resolve(rootDir, 'node_modules/.bin')}:${process.env.PATH}` },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return new Promise((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error('the stack did not start within 240 s')), 240_000);
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('STACK '));
      if (line) {
        clearTimeout(timer);
        ok({ proc, ...(JSON.parse(line.slice(6)) as StackInfo) });
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`the stack process exited (${code}) before it was ready`));
    });
  });
}

export default async function setup(project: TestProject) {
  const stacks: ChildProcess[] = [];
  const sites: ChildProcess[] = [];
  const teardown = async () => {
    for (const s of sites) await stopProc(s, 5_000);
    await Promise.all(stacks.map((s) => stopProc(s, 120_000)));
  };
  let info: StackInfo;
  let chatInfo: StackInfo | undefined;
  try {
    if (process.env.SITE_TEST_API_URL) {
      info = { apiUrl: process.env.SITE_TEST_API_URL, apiKey: process.env.SITE_TEST_API_KEY ?? '' };
    } else {
      const started = await Promise.allSettled([startStackProcess('dev'), startStackProcess('off')]);
      for (const r of started) if (r.status === 'fulfilled') stacks.push(r.value.proc);
      for (const r of started) if (r.status === 'rejected') throw r.reason;
      info = (started[0] as PromiseFulfilledResult<StackInfo>).value;
      chatInfo = (started[1] as PromiseFulfilledResult<StackInfo>).value;
    }
    const build = spawnSync(
      process.execPath,
      [resolve(siteDir, 'node_modules/astro/bin/astro.mjs'), 'build'],
      {
        cwd: siteDir,
        env: { ...process.env, ASTRO_TELEMETRY_DISABLED: '1' },
        stdio: 'inherit',
      },
    );
    if (build.status !== 0) throw new Error('astro build failed');
    // The main site steers both pools (the console's environment switcher); public pages use the first.
    const environments = chatInfo
      ? [
          { name: 'xmtp-dev', apiUrl: info.apiUrl, apiKey: info.apiKey },
          { name: 'no-xmtp', apiUrl: chatInfo.apiUrl, apiKey: chatInfo.apiKey },
        ]
      : [];
    const main = await startSite(
      info.apiUrl,
      info.apiKey,
      environments.length ? { SITE_ENVIRONMENTS: JSON.stringify(environments) } : {},
    );
    sites.push(main.proc);
    const chat = chatInfo ? await startSite(chatInfo.apiUrl, chatInfo.apiKey) : undefined;
    if (chat) sites.push(chat.proc);
    project.provide('siteUrl', main.url);
    project.provide('apiUrl', info.apiUrl);
    project.provide('apiKey', info.apiKey);
    project.provide('joinUrl', info.joinUrl ?? '');
    project.provide('chatSiteUrl', chat?.url ?? '');
    project.provide('chatApiUrl', chatInfo?.apiUrl ?? '');
    project.provide('chatApiKey', chatInfo?.apiKey ?? '');
    project.provide('openrouterUrl', info.openrouterUrl ?? '');
    project.provide(
      'environments',
      environments.map((e) => e.name),
    );
  } catch (err) {
    await teardown();
    throw err;
  }
  return teardown;
}
