// First step of `npm start`, on whatever Node runs npm: installs what is missing or stale
// (root, site/, and runtime/ when the real runtime is used) so a fresh clone starts with one command.
import { execSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { installIsStale, markInstalled } from './install-state.mjs';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

function ensureInstalled(dir) {
  const lock = path.join(dir, 'package-lock.json');
  if (!fs.existsSync(path.join(dir, 'package.json'))) return;
  if (!installIsStale(dir)) return;
  console.log(`installing dependencies in ${path.relative(root, dir) || '.'} …`);
  execSync(fs.existsSync(lock) ? 'npm ci --no-audit --no-fund' : 'npm install --no-audit --no-fund', {
    cwd: dir,
    stdio: 'inherit',
  });
  markInstalled(dir);
}

ensureInstalled(root);
ensureInstalled(path.join(root, 'site'));
// The local runtime is OpenClaw unless the stand-in is asked for (activities/compute/index.ts localRuntime).
const runtime = process.env.LOCAL_RUNTIME || 'openclaw';
if (runtime === 'openclaw') ensureInstalled(path.join(root, 'runtime'));
