import { describe, expect, it } from 'vitest';
import type { BurstSettings } from '../../src/config/schema.js';
import { BurstDetector, type BurstDecision } from '../../src/master/burst.js';

const DEFAULTS: BurstSettings = { startTriggerMs: 1000, startTriggerCount: 2, expireMs: 5000 };

/** Feeds notifies at the given absolute times and returns every decision. */
function feed(detector: BurstDetector, times: readonly number[]): BurstDecision[] {
  return times.map((t) => detector.onNotify(t));
}

const pass = (reason: BurstDecision['reason']): BurstDecision => ({ notify: true, reason, pendingDueAt: null });
const hold = (reason: BurstDecision['reason'], pendingDueAt: number): BurstDecision => ({ notify: false, reason, pendingDueAt });

describe('BurstDetector: single decisions', () => {
  it('passes the very first notify straight through', () => {
    const detector = new BurstDetector(DEFAULTS);
    expect(detector.onNotify(10_000)).toEqual(pass('first'));
    expect(detector.pendingDueAt).toBeNull();
    expect(detector.inBurst).toBe(false);
  });

  it('passes a notify slower than the trigger time as regular', () => {
    const detector = new BurstDetector(DEFAULTS);
    expect(feed(detector, [0, 1000, 3500])).toEqual([pass('first'), pass('regular'), pass('regular')]);
    expect(detector.inBurst).toBe(false);
  });

  it('treats exactly startTriggerMs apart as slow (the comparison is strict)', () => {
    const detector = new BurstDetector(DEFAULTS);
    expect(feed(detector, [0, 1000])).toEqual([pass('first'), pass('regular')]);
    const quick = new BurstDetector(DEFAULTS);
    expect(feed(quick, [0, 999])[1]).toEqual(hold('counting', 1000));
  });

  it('startTriggerCount 2: one quick notify counts, the second starts a burst at the previous notify', () => {
    const detector = new BurstDetector(DEFAULTS);
    expect(detector.onNotify(1000)).toEqual(pass('first'));
    // counting: held until previous (1000) + startTriggerMs
    expect(detector.onNotify(1300)).toEqual(hold('counting', 2000));
    expect(detector.inBurst).toBe(false);
    expect(detector.pendingDueAt).toBe(2000);
    // burst-start: the burst started at the previous notify (1300), due 1300 + expireMs
    expect(detector.onNotify(1500)).toEqual(hold('burst-start', 6300));
    expect(detector.inBurst).toBe(true);
    expect(detector.pendingDueAt).toBe(6300);
  });

  it('startTriggerCount 3: two counting holds before the burst starts', () => {
    const detector = new BurstDetector({ startTriggerMs: 500, startTriggerCount: 3, expireMs: 4000 });
    expect(feed(detector, [0, 100, 250, 300])).toEqual([
      pass('first'),
      hold('counting', 500), // 0 + 500
      hold('counting', 600), // 100 + 500
      hold('burst-start', 4250), // burst starts at 250, the previous notify
    ]);
    expect(detector.inBurst).toBe(true);
  });

  it('startTriggerCount 1: the first quick notify already starts a burst', () => {
    const detector = new BurstDetector({ startTriggerMs: 1000, startTriggerCount: 1, expireMs: 5000 });
    expect(feed(detector, [0, 200])).toEqual([pass('first'), hold('burst-start', 5000)]);
  });

  it('keeps pendingDueAt at burstStart + expireMs while bursting', () => {
    const detector = new BurstDetector(DEFAULTS);
    feed(detector, [0, 100, 200]); // burst starts at 100, due 5100
    for (const t of [300, 900, 1800, 2700, 3600, 4500, 5099]) {
      expect(detector.onNotify(t)).toEqual(hold('bursting', 5100));
      expect(detector.pendingDueAt).toBe(5100);
    }
    expect(detector.inBurst).toBe(true);
  });

  it('releases the first notify at or after burstStart + expireMs as burst-expired', () => {
    const detector = new BurstDetector(DEFAULTS);
    feed(detector, [0, 100, 200, 900, 1800, 2700, 3600, 4500]); // burst start 100
    expect(detector.onNotify(5100)).toEqual(pass('burst-expired'));
    expect(detector.inBurst).toBe(false);
    expect(detector.pendingDueAt).toBeNull();
  });

  it('expiry wins even when the notify is also slow', () => {
    const detector = new BurstDetector(DEFAULTS);
    feed(detector, [0, 100, 200]); // burst start 100, due 5100
    expect(detector.onNotify(9000)).toEqual(pass('burst-expired'));
  });

  it('ends the burst on a notify slower than the trigger time (before expiry)', () => {
    const detector = new BurstDetector(DEFAULTS);
    feed(detector, [0, 100, 200, 300]); // burst start 100
    expect(detector.onNotify(1300)).toEqual(pass('burst-ended'));
    expect(detector.inBurst).toBe(false);
    expect(detector.pendingDueAt).toBeNull();
  });

  it('starts counting afresh after a burst ended', () => {
    const detector = new BurstDetector(DEFAULTS);
    feed(detector, [0, 100, 200, 1300]); // burst-ended at 1300
    expect(feed(detector, [1400, 1500, 1600])).toEqual([
      hold('counting', 2300), // 1300 + 1000
      hold('burst-start', 6400), // start 1400
      hold('bursting', 6400),
    ]);
  });

  it('starts counting afresh after a burst expired', () => {
    const detector = new BurstDetector(DEFAULTS);
    feed(detector, [0, 100, 200]); // burst start 100
    expect(detector.onNotify(5100)).toEqual(pass('burst-expired'));
    expect(feed(detector, [5200, 5300])).toEqual([hold('counting', 6100), hold('burst-start', 10_200)]);
  });

  it('counting then slow: the slow notify passes as regular and clears the hold', () => {
    const detector = new BurstDetector({ startTriggerMs: 1000, startTriggerCount: 3, expireMs: 5000 });
    expect(feed(detector, [0, 500, 1000, 3000])).toEqual([
      pass('first'),
      hold('counting', 1000),
      hold('counting', 1500),
      pass('regular'),
    ]);
    expect(detector.pendingDueAt).toBeNull();
    // the count was reset: two quick ones are needed again before the burst
    expect(feed(detector, [3100, 3200, 3300])).toEqual([
      hold('counting', 4000),
      hold('counting', 4100),
      hold('burst-start', 8200),
    ]);
  });

  it('files are independent: each detector keeps its own state', () => {
    const a = new BurstDetector(DEFAULTS);
    const b = new BurstDetector(DEFAULTS);
    feed(a, [0, 100, 200]);
    expect(a.inBurst).toBe(true);
    expect(b.onNotify(250)).toEqual(pass('first'));
    expect(b.inBurst).toBe(false);
  });
});

describe('BurstDetector: pending flush', () => {
  it('takeDuePending is false with nothing held', () => {
    const detector = new BurstDetector(DEFAULTS);
    expect(detector.takeDuePending(0)).toBe(false);
    detector.onNotify(0);
    expect(detector.takeDuePending(1_000_000)).toBe(false);
  });

  it('takeDuePending is false before the due time, true at it, and only once', () => {
    const detector = new BurstDetector(DEFAULTS);
    feed(detector, [0, 100, 200]); // due 5100
    expect(detector.takeDuePending(5099)).toBe(false);
    expect(detector.pendingDueAt).toBe(5100);
    expect(detector.takeDuePending(5100)).toBe(true);
    expect(detector.pendingDueAt).toBeNull();
    expect(detector.takeDuePending(5101)).toBe(false);
  });

  it('takeDuePending after the due time flushes', () => {
    const detector = new BurstDetector(DEFAULTS);
    feed(detector, [0, 300]); // counting, due 1000
    expect(detector.takeDuePending(60_000)).toBe(true);
    expect(detector.pendingDueAt).toBeNull();
  });

  it('a flush does not end the burst: the next notify after expiry still passes', () => {
    const detector = new BurstDetector(DEFAULTS);
    feed(detector, [0, 100, 200]); // burst start 100, due 5100
    expect(detector.takeDuePending(5100)).toBe(true);
    expect(detector.inBurst).toBe(true);
    expect(detector.onNotify(5150)).toEqual(pass('burst-expired'));
  });

  it('clearPending forgets the hold without touching the burst state', () => {
    const detector = new BurstDetector(DEFAULTS);
    feed(detector, [0, 100, 200]);
    detector.clearPending();
    expect(detector.pendingDueAt).toBeNull();
    expect(detector.takeDuePending(1_000_000)).toBe(false);
    expect(detector.inBurst).toBe(true);
    // the next quick notify in the burst holds again
    expect(detector.onNotify(300)).toEqual(hold('bursting', 5100));
  });

  it('a passed notify clears an earlier hold', () => {
    const detector = new BurstDetector(DEFAULTS);
    feed(detector, [0, 100]); // counting, due 1000
    expect(detector.pendingDueAt).toBe(1000);
    detector.onNotify(5000); // regular
    expect(detector.pendingDueAt).toBeNull();
    expect(detector.takeDuePending(5000)).toBe(false);
  });
});

describe('BurstDetector: realistic bursts with the defaults', () => {
  /** Notifies `count` times `stepMs` apart from 0; returns how many passed and the detector. */
  function run(count: number, stepMs: number) {
    const detector = new BurstDetector(DEFAULTS);
    const passedAt: number[] = [];
    for (let i = 0; i < count; i += 1) {
      const t = i * stepMs;
      if (detector.onNotify(t).notify) passedAt.push(t);
    }
    return { detector, passedAt, last: (count - 1) * stepMs };
  }

  it('200 notifies 20 ms apart (4 s): only the first passes; the rest is flushed at burst start + 5 s', () => {
    // 0 first, 20 counting, 40 burst-start (start 20, due 5020), 60..3980 bursting: all < 5020.
    const { detector, passedAt, last } = run(200, 20);
    expect(last).toBe(3980);
    expect(passedAt).toEqual([0]);
    expect(detector.pendingDueAt).toBe(5020);
    expect(detector.takeDuePending(5019)).toBe(false);
    expect(detector.takeDuePending(5020)).toBe(true);
    expect(detector.pendingDueAt).toBeNull();
  });

  it('1000 notifies 20 ms apart (20 s): one pass per 5020 ms cycle, and the tail is still due', () => {
    // Each cycle: a pass at T, counting at T+20, burst-start at T+40 (start T+20), expiry pass at
    // T+20+5000 = T+5020. So passes at 0, 5020, 10040, 15060; 20080 is after the last (19980).
    const { detector, passedAt, last } = run(1000, 20);
    expect(last).toBe(19_980);
    expect(passedAt).toEqual([0, 5020, 10_040, 15_060]);
    expect(detector.inBurst).toBe(true);
    // Burst started at 15080, so the held tail is due at 20080: nothing is stranded.
    expect(detector.pendingDueAt).toBe(20_080);
    expect(detector.takeDuePending(20_079)).toBe(false);
    expect(detector.takeDuePending(20_080)).toBe(true);
  });

  it('notifies slower than the trigger time all pass', () => {
    const { detector, passedAt } = run(50, 1000);
    expect(passedAt).toHaveLength(50);
    expect(detector.pendingDueAt).toBeNull();
  });

  it('every hold is due after now and at most expireMs later, so a flush always comes', () => {
    const detector = new BurstDetector(DEFAULTS);
    let t = 0;
    // an irregular pattern: quick runs, pauses, long bursts
    const steps = [10, 10, 900, 1200, 5, 5, 5, 999, 999, 999, 999, 999, 999, 2000, 50, 50, 7000, 1, 1];
    for (const step of steps) {
      t += step;
      const decision = detector.onNotify(t);
      if (decision.notify) {
        expect(decision.pendingDueAt).toBeNull();
      } else {
        expect(decision.pendingDueAt).not.toBeNull();
        // held data is always due strictly later than now, and never more than one expiry away
        expect(decision.pendingDueAt!).toBeGreaterThan(t);
        expect(decision.pendingDueAt!).toBeLessThanOrEqual(t + DEFAULTS.expireMs);
      }
    }
  });
});
