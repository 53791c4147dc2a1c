/**
 * A server's "slow down" for every request of one account: after a 429 with `Retry-After`, each
 * request of any lane (including the chunks of upload sessions already running) waits here until
 * the time has passed, instead of only the lane that was told. Rate limits are per account, not
 * per connection.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export class RateGate {
  #pausedUntil = 0;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Holds back every request for `ms` from now (a later end wins; an earlier one never shortens it). */
  pause(ms: number): void {
    this.#pausedUntil = Math.max(this.#pausedUntil, this.#now() + ms);
  }

  /** Milliseconds left of the pause (0: requests may go). */
  get remainingMs(): number {
    return Math.max(0, this.#pausedUntil - this.#now());
  }

  /** Resolves when no pause is in force; rejects with the signal's reason when it aborts first. */
  async wait(signal: AbortSignal): Promise<void> {
    for (let left = this.remainingMs; left > 0; left = this.remainingMs) {
      await sleep(left, undefined, { signal }).catch((error: unknown) => {
        signal.throwIfAborted();
        throw error;
      });
    }
    signal.throwIfAborted();
  }
}
