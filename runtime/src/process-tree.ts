// Killing a gateway reliably: OpenClaw starts helpers (spawn broker, SQLite workers) and some of them
// sit in their own process groups, so killing our child's group alone can leave orphans. We collect
// the whole descendant tree from /proc first, then signal every group and pid in it.
import { readdirSync, readFileSync } from 'node:fs';

function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 4 is the ppid; the command name (field 2) may contain spaces, so parse after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[1]);
  } catch {
    return null;
  }
}

export function descendants(root: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return []; // not Linux: process-group signalling still applies
  }
  const children = new Map<number, number[]>();
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    const ppid = parentOf(pid);
    if (ppid === null) continue;
    const list = children.get(ppid) ?? [];
    list.push(pid);
    children.set(ppid, list);
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop() as number;
    for (const child of children.get(pid) ?? []) {
      out.push(child);
      stack.push(child);
    }
  }
  return out;
}

function trySignal(target: number, signal: NodeJS.Signals): void {
  try {
    process.kill(target, signal);
  } catch {
    // already gone
  }
}

/** Signals the process group led by `pid`, and every descendant (and its group). */
export function signalTree(pid: number, signal: NodeJS.Signals, known: number[] = []): number[] {
  const tree = [...new Set([...known, ...descendants(pid)])];
  trySignal(-pid, signal);
  for (const child of tree) {
    trySignal(child, signal);
  }
  return tree;
}

/** Running (a zombie waiting to be reaped counts as gone: it holds no port, lock or memory). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

/**
 * Every process (other than this one) whose environment has `name=value`. The gateway and all its
 * helpers inherit OPENCLAW_STATE_DIR, which is unique per instance, so this finds them even after they
 * were re-parented — e.g. a gateway orphaned by a runtime that was SIGKILLed, still holding the state
 * directory's locks.
 */
export function processesWithEnv(name: string, value: string): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const needle = `${name}=${value}`;
  const out: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(needle)) out.push(pid);
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}
