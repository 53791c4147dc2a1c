/**
 * The supervisor's restart delay: 1 s after an unexpected exit, doubling on a crash loop up to
 * 60 s, and back to 1 s once the subtask has stayed up for 60 s.
 */
export const RESTART_MIN_MS = 1000;
export const RESTART_MAX_MS = 60_000;
export const HEALTHY_AFTER_MS = 60_000;

export class RestartBackoff {
  #nextDelay = RESTART_MIN_MS;
  #startedAt: number | null = null;

  /** The subtask (re)started at `now`. */
  started(now: number): void {
    this.#startedAt = now;
  }

  /** The subtask died at `now`: how long to wait before the restart. */
  onExit(now: number): number {
    const uptime = this.#startedAt === null ? 0 : now - this.#startedAt;
    if (uptime >= HEALTHY_AFTER_MS) this.#nextDelay = RESTART_MIN_MS;
    const delay = this.#nextDelay;
    this.#nextDelay = Math.min(RESTART_MAX_MS, delay * 2);
    return delay;
  }
}
