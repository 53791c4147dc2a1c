/**
 * A Clock (src/shared/clock.ts) that moves only when a test says so: timing rules run in
 * milliseconds of real time. `advance` fires due timers in order, letting promises settle
 * between them.
 */
import type { Clock } from '../../src/shared/clock.js';

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
}

export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Set<Timer>();

  constructor(start = 1_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(fn: () => void, ms: number): () => void {
    const timer: Timer = { at: this.#now + Math.max(0, ms), seq: (this.#seq += 1), fn };
    this.#timers.add(timer);
    return () => void this.#timers.delete(timer);
  }

  /** Lets pending promise chains (and I/O callbacks that are already due) run. */
  async settle(): Promise<void> {
    for (let i = 0; i < 30; i += 1) await new Promise((resolve) => setImmediate(resolve));
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      await this.settle();
      const next = [...this.#timers].filter((timer) => timer.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!next) break;
      this.#timers.delete(next);
      this.#now = next.at;
      next.fn();
    }
    this.#now = end;
    await this.settle();
  }

  /** Advances in small steps until `condition` holds; returns the time it took (ms), or throws after `limitMs`. */
  async until(condition: () => boolean, limitMs = 600_000, stepMs = 10): Promise<number> {
    const start = this.#now;
    while (!condition()) {
      if (this.#now - start >= limitMs) throw new Error(`condition not met within ${limitMs} ms of clock time`);
      await this.advance(stepMs);
    }
    return this.#now - start;
  }
}
