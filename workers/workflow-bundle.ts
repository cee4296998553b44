/**
 * The workflow bundle, cached on disk by a hash of its sources: bundling takes seconds to tens of seconds,
 * and `npm start` should not pay for it when no workflow changed.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { workflowsPath } from './create-worker';

const quiet = { info() {}, warn() {}, debug() {}, trace() {}, log() {}, error: console.error };

export async function cachedWorkflowBundle(cacheDir: string): Promise<{ code: string }> {
  const root = path.resolve(path.dirname(workflowsPath), '..');
  const hash = createHash('sha256');
  // Everything the bundle is made of: the workflows (with their phase modules) and the contracts they import.
  for (const dir of ['workflows', 'contracts']) {
    const files = fs.readdirSync(path.join(root, dir), { recursive: true, withFileTypes: true });
    for (const file of files
      .filter((f) => f.isFile())
      .map((f) => path.join(f.parentPath, f.name))
      .sort())
      hash.update(path.relative(root, file)).update(fs.readFileSync(file));
  }
  hash.update(fs.readFileSync(path.join(root, 'package-lock.json')));
  const file = path.join(cacheDir, `workflow-bundle-${hash.digest('hex').slice(0, 16)}.js`);
  if (fs.existsSync(file)) return { code: fs.readFileSync(file, 'utf8') };
  const { code } = await bundleWorkflowCode({ workflowsPath, logger: quiet });
  fs.mkdirSync(cacheDir, { recursive: true });
  for (const old of fs.readdirSync(cacheDir).filter((f) => f.startsWith('workflow-bundle-')))
    fs.rmSync(path.join(cacheDir, old));
  fs.writeFileSync(file, code);
  return { code };
}
