/** Timeouts and abortable waits: every timer is cleared and every listener removed on both paths. */
import { setTimeout as sleepTimer } from 'node:timers/promises';
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
): Promise<T> {
  parent.throwIfAborted();
  const controller = new AbortController();
  let rejectEarly!: (reason: unknown) => void;
  const early = new Promise<never>((_, reject) => {
    rejectEarly = reject;
  });
  const timer = setTimeout(() => {
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
    clearTimeout(timer);
    parent.removeEventListener('abort', onParentAbort);
  }
}

/** Waits `ms`; resolves false instead of throwing when `signal` aborts first. */
export async function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await sleepTimer(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}
