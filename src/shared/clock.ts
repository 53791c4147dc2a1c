/**
 * Time as a dependency: the uploader's timing rules (retry waits, pauses, timeouts, dead time)
 * run on a Clock, so unit tests drive them with a manual one in milliseconds of real time.
 */
export interface Clock {
  now(): number;
  /** Calls `fn` after `ms`; the returned function cancels it. */
  setTimer(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  },
};
