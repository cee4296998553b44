/**
 * How a process stops on SIGTERM/SIGINT (`npm run api`, `npm run worker`): the first signal starts a
 * graceful drain and the process exits 0 once it is done; it exits 1 when the drain fails, when it is not
 * done by the deadline, or on another signal a second or more later (an impatient operator). A repeat within
 * the first second is the same signal arriving again along the process chain (the process group, and each of
 * `npm` and `tsx` relaying it): it is ignored.
 */
import type { Logger } from './logging';

/** Signals arriving this soon after the first are copies of it, not a second request. */
export const REPEAT_WINDOW_MS = 1_000;

export function onShutdownSignals(opts: {
  logger: Logger;
  /** The longest the drain may take; then the process exits 1. */
  deadlineMs: number;
  /** The graceful part: stop taking work, finish what is in flight, close. */
  drain: (signal: NodeJS.Signals) => Promise<void>;
  signals?: NodeJS.Signals[];
  /** Tests: instead of `process.exit`. */
  exit?: (code: number) => void;
}): () => void {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let firstAt: number | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    if (firstAt !== null) {
      if (Date.now() - firstAt < REPEAT_WINDOW_MS) return;
      opts.logger.warn({ signal }, 'second signal during the drain: exiting now');
      exit(1);
      return;
    }
    firstAt = Date.now();
    opts.logger.info({ signal, deadlineMs: opts.deadlineMs }, 'draining');
    const deadline = setTimeout(() => {
      opts.logger.error({ deadlineMs: opts.deadlineMs }, 'the drain took too long: exiting now');
      exit(1);
    }, opts.deadlineMs);
    deadline.unref();
    opts.drain(signal).then(
      () => {
        clearTimeout(deadline);
        opts.logger.info('drained');
        exit(0);
      },
      (err: unknown) => {
        clearTimeout(deadline);
        opts.logger.error({ err }, 'the drain failed');
        exit(1);
      },
    );
  };
  const signals = opts.signals ?? ['SIGINT', 'SIGTERM'];
  for (const signal of signals) process.on(signal, onSignal);
  /** Removes the handlers. */
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
  };
}
