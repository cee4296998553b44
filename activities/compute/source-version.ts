/**
 * The runtime version of a runtime run from source (the local provider): a hash over the files it runs from,
 * so a change to the runtime's code or its lockfile is a new version the pool rolls its idle instances onto.
 * Installed packages, tests and dot-folders are left out (the lockfile stands for the packages).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** Folders never hashed: installed packages and the runtime's own tests. */
const SKIPPED = /^(node_modules|tests?)$/;

export function sourceVersion(paths: string[]): string {
  const hash = crypto.createHash('sha256');
  const visit = (p: string, rel: string) => {
    const stat = fs.statSync(p, { throwIfNoEntry: false });
    if (!stat) return;
    if (stat.isDirectory()) {
      for (const entry of fs.readdirSync(p).sort()) {
        if (entry.startsWith('.') || SKIPPED.test(entry)) continue;
        visit(path.join(p, entry), `${rel}/${entry}`);
      }
    } else if (stat.isFile()) {
      hash.update(`${rel}\0`).update(fs.readFileSync(p)).update('\0');
    }
  };
  for (const p of [...paths].sort()) visit(p, path.basename(p));
  return `src-${hash.digest('hex').slice(0, 12)}`;
}
