/** Timeouts and abortable waits: every timer is cleared and every listener removed on both paths. */
import { systemClock, type Clock } from './clock.js';
import { PushtaskError } from './errors.js';

/**
 * Runs `operation` with its own AbortSignal that fires after `ms` or when `parent` aborts. The
 * returned promise settles at that moment even if the operation ignores its signal (some network
 * libraries hang forever after a dropped connection).
 */
export async function withTimeout<T>(
  operation: (signal: AbortSignal) => Promise<T>,
  ms: number,
  parent: AbortSignal,
  what: string,
  clock: Clock = systemClock,
): Promise<T> {
  parent.throwIfAborted();
  const controller = new AbortController();
  let rejectEarly!: (reason: unknown) => void;
  const early = new Promise<never>((_, reject) => {
    rejectEarly = reject;
  });
  const cancelTimer = clock.setTimer(() => {
    const error = new PushtaskError('TIMEOUT', `${what} timed out after ${ms} ms`);
    controller.abort(error);
    rejectEarly(error);
  }, ms);
  const onParentAbort = () => {
    const error = new PushtaskError('ABORTED', `${what} was aborted: the agent is stopping`);
    controller.abort(error);
    rejectEarly(error);
  };
  parent.addEventListener('abort', onParentAbort, { once: true });
  try {
    return await Promise.race([operation(controller.signal), early]);
  } finally {
    cancelTimer();
    parent.removeEventListener('abort', onParentAbort);
  }
}

/** Waits `ms`; resolves false instead of throwing when `signal` aborts first. */
export function sleep(ms: number, signal: AbortSignal, clock: Clock = systemClock): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      cancel();
      resolve(false);
    };
    const cancel = clock.setTimer(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
