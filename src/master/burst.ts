/**
 * Burst mode, per file, exactly as pysubtask's README and base.py describe it: a run of
 * `startTriggerCount` notifies each closer than `startTriggerMs` to the previous one starts a
 * burst; while it lasts, notifies are held back (the data buffers up in the file). The burst ends,
 * and the held data is notified, on the first notify slower than the trigger time, or on the first
 * notify after `expireMs` from the burst's start. Held data that no later notify releases is
 * flushed once its due time passes (`checkPending`).
 *
 * Pure logic: time comes in as an argument, so every branch is unit-tested without waiting.
 */
import type { BurstSettings } from '../config/schema.js';

export type BurstReason =
  | 'first'          // the first notify of this file passes straight through
  | 'regular'        // slower than the trigger time: no burst
  | 'counting'       // quick, but not enough in a row yet: held until prev + trigger time
  | 'burst-start'    // enough quick notifies in a row: a burst starts, held until start + expiry
  | 'bursting'       // still quick inside the burst: held
  | 'burst-expired'  // the burst ran for its whole expiry: released
  | 'burst-ended';   // a slow notify ended the burst: released

export interface BurstDecision {
  notify: boolean;
  reason: BurstReason;
  /** When held data becomes due for a flush (ms since epoch), or null when nothing is held. */
  pendingDueAt: number | null;
}

export class BurstDetector {
  readonly #settings: BurstSettings;
  #previousAt: number | null = null;
  #burstStartAt: number | null = null;
  #count = 0;
  #pendingDueAt: number | null = null;

  constructor(settings: BurstSettings) {
    this.#settings = settings;
  }

  get pendingDueAt(): number | null {
    return this.#pendingDueAt;
  }

  get inBurst(): boolean {
    return this.#burstStartAt !== null;
  }

  onNotify(now: number): BurstDecision {
    const decision = this.#decide(now);
    this.#previousAt = now;
    this.#pendingDueAt = decision.pendingDueAt;
    return decision;
  }

  #decide(now: number): BurstDecision {
    const { startTriggerMs, startTriggerCount, expireMs } = this.#settings;
    const previous = this.#previousAt;
    if (previous === null) return pass('first');
    const sincePrevious = now - previous;

    if (this.#burstStartAt !== null) {
      if (now - this.#burstStartAt >= expireMs) {
        this.#endBurst();
        return pass('burst-expired');
      }
      if (sincePrevious < startTriggerMs) {
        this.#count += 1;
        return hold('bursting', this.#burstStartAt + expireMs);
      }
      this.#endBurst();
      return pass('burst-ended');
    }

    if (sincePrevious < startTriggerMs) {
      const reachedCount = this.#count >= startTriggerCount - 1;
      this.#count += 1;
      if (!reachedCount) return hold('counting', previous + startTriggerMs);
      this.#burstStartAt = previous;
      return hold('burst-start', previous + expireMs);
    }
    this.#count = 0;
    return pass('regular');
  }

  #endBurst(): void {
    this.#burstStartAt = null;
    this.#count = 0;
  }

  /** True when held data is due at `now`; the caller then notifies and this forgets the hold. */
  takeDuePending(now: number): boolean {
    if (this.#pendingDueAt === null || this.#pendingDueAt > now) return false;
    this.#pendingDueAt = null;
    return true;
  }

  /** A notify that bypassed burst mode (notifyAll) delivered whatever was held. */
  clearPending(): void {
    this.#pendingDueAt = null;
  }
}

function pass(reason: BurstReason): BurstDecision {
  return { notify: true, reason, pendingDueAt: null };
}

function hold(reason: BurstReason, pendingDueAt: number): BurstDecision {
  return { notify: false, reason, pendingDueAt };
}
