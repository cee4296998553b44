// Whether a package's installed node_modules match its package-lock.json: `npm start` reinstalls when they do
// not, and the npm start test refuses to run on a stale install (a reinstall mid-suite would pull node_modules
// from under the other tests). Plain JavaScript on purpose: it runs before anything is installed.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const MARK = '.convos-installed-lock';

const lockHash = (dir) =>
  createHash('sha256')
    .update(fs.readFileSync(path.join(dir, 'package-lock.json')))
    .digest('hex');

/**
 * Stale: nothing installed, or installed from another lockfile. What we installed ourselves is marked with the
 * lockfile's hash (an `npm install` rewrites the lockfile after npm's own stamp, so times lie); an install we
 * did not make (a bare `npm ci`) counts as current when npm's stamp is not older than the lockfile.
 */
export function installIsStale(dir) {
  const modules = path.join(dir, 'node_modules');
  const stamp = path.join(modules, '.package-lock.json');
  if (!fs.existsSync(stamp)) return true;
  if (!fs.existsSync(path.join(dir, 'package-lock.json'))) return false;
  const mark = path.join(modules, MARK);
  if (fs.existsSync(mark)) return fs.readFileSync(mark, 'utf8').trim() !== lockHash(dir);
  return fs.statSync(path.join(dir, 'package-lock.json')).mtimeMs > fs.statSync(stamp).mtimeMs;
}

/** Records that node_modules was installed from the current lockfile. */
export function markInstalled(dir) {
  if (!fs.existsSync(path.join(dir, 'package-lock.json'))) return;
  fs.writeFileSync(path.join(dir, 'node_modules', MARK), `${lockHash(dir)}\n`);
}
