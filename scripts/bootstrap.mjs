// First step of `npm start`, on whatever Node runs npm: installs what is missing or stale
// (root, site/, and runtime/ when the real runtime is used) so a fresh clone starts with one command.
import { execSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

function ensureInstalled(dir) {
  const lock = path.join(dir, 'package-lock.json');
  const stamp = path.join(dir, 'node_modules', '.package-lock.json');
  if (!fs.existsSync(path.join(dir, 'package.json'))) return;
  const stale =
    !fs.existsSync(stamp) || (fs.existsSync(lock) && fs.statSync(lock).mtimeMs > fs.statSync(stamp).mtimeMs);
  if (!stale) return;
  console.log(`installing dependencies in ${path.relative(root, dir) || '.'} …`);
  execSync(fs.existsSync(lock) ? 'npm ci --no-audit --no-fund' : 'npm install --no-audit --no-fund', {
    cwd: dir,
    stdio: 'inherit',
  });
}

ensureInstalled(root);
ensureInstalled(path.join(root, 'site'));
// The local runtime is OpenClaw unless the stand-in is asked for (activities/compute/index.ts localRuntime).
const runtime = process.env.LOCAL_RUNTIME || 'openclaw';
if (runtime === 'openclaw') ensureInstalled(path.join(root, 'runtime'));
