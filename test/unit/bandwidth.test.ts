import { describe, expect, it } from 'vitest';
import { BandwidthLimiter, lowestRate, parseBandwidthLimit, rateAt, type BandwidthClock } from '../../src/shared/bandwidth.js';

const KiB = 1024;
/** Local time of day on a fixed date, as epoch ms (the schedule reads local time). */
const at = (hours: number, minutes: number, ms = 0) => new Date(2026, 11, 5, hours, minutes, 0, ms).getTime();

/** A clock that only moves when told to; sleep() records the wait and moves the clock by it. */
function fakeClock(start: number): BandwidthClock & { t: number; slept: number[] } {
  const clock = {
    t: start,
    slept: [] as number[],
    now: () => clock.t,
    sleep: async (ms: number) => {
      clock.slept.push(ms);
      clock.t += ms;
    },
  };
  return clock;
}

describe('parseBandwidthLimit', () => {
  it('reads a number as bytes per second and 0 as no limit', () => {
    expect(parseBandwidthLimit(65536)).toEqual([{ minute: 0, rate: 65536 }]);
    expect(parseBandwidthLimit(0)).toEqual([{ minute: 0, rate: null }]);
  });

  it("reads rclone's suffixes (binary), off, and the upload half of up:down", () => {
    expect(parseBandwidthLimit('512k')).toEqual([{ minute: 0, rate: 512 * KiB }]);
    expect(parseBandwidthLimit('1.5M')).toEqual([{ minute: 0, rate: 1.5 * KiB * KiB }]);
    expect(parseBandwidthLimit('2g')).toEqual([{ minute: 0, rate: 2 * KiB ** 3 }]);
    expect(parseBandwidthLimit('800B')).toEqual([{ minute: 0, rate: 800 }]);
    expect(parseBandwidthLimit('OFF')).toEqual([{ minute: 0, rate: null }]);
    expect(parseBandwidthLimit('10M:100k')).toEqual([{ minute: 0, rate: 10 * KiB * KiB }]);
  });

  it('reads a time-of-day schedule', () => {
    expect(parseBandwidthLimit('08:00,512k 12:30,10M 19:00,off')).toEqual([
      { minute: 480, rate: 512 * KiB },
      { minute: 750, rate: 10 * KiB * KiB },
      { minute: 1140, rate: null },
    ]);
  });

  it('refuses what it cannot read, naming the part', () => {
    expect(() => parseBandwidthLimit('512')).toThrow(/'512' has no unit: write '512k'/);
    expect(() => parseBandwidthLimit('fast')).toThrow(/cannot read the rate 'fast'/);
    expect(() => parseBandwidthLimit('08:00,512k 07:00,off')).toThrow(/times must increase \('07:00,off' comes after 08:00\)/);
    expect(() => parseBandwidthLimit('24:00,1M')).toThrow(/not a time of day/);
    expect(() => parseBandwidthLimit('Mon-08:00,512k')).toThrow(/weekday entries are not supported/);
    expect(() => parseBandwidthLimit('08:00,512k 19:00')).toThrow(/cannot read '19:00'/);
    expect(() => parseBandwidthLimit('')).toThrow(/expected a rate/);
    expect(() => parseBandwidthLimit(-1)).toThrow(/positive number/);
  });
});

describe('rateAt', () => {
  const schedule = parseBandwidthLimit('08:00,512k 19:00,off');
  it('takes the last entry at or before the time, and the last of the day before the first', () => {
    expect(rateAt(schedule, new Date(at(7, 59)))).toBeNull();
    expect(rateAt(schedule, new Date(at(8, 0)))).toBe(512 * KiB);
    expect(rateAt(schedule, new Date(at(18, 59)))).toBe(512 * KiB);
    expect(rateAt(schedule, new Date(at(19, 0)))).toBeNull();
    const night = parseBandwidthLimit('01:00,off 06:00,64k');
    expect(rateAt(night, new Date(at(0, 30)))).toBe(64 * KiB);
  });

  it('knows the lowest rate a schedule allows', () => {
    expect(lowestRate(parseBandwidthLimit('08:00,512k 12:00,1M 19:00,off'))).toBe(512 * KiB);
    expect(lowestRate(parseBandwidthLimit('off'))).toBeNull();
  });
});

describe('BandwidthLimiter', () => {
  it('lets a small burst pass at once, then spaces writes at the rate, in the order they asked', () => {
    const clock = fakeClock(at(12, 0));
    const limiter = new BandwidthLimiter(parseBandwidthLimit('100k'), clock);
    expect(limiter.reserve(1000)).toBe(0); // within the 16 KiB burst
    expect(limiter.reserve(15 * KiB)).toBe(0);
    // The bucket holds 16 KiB - 1000 - 15 KiB = 24 bytes; 100 KiB more borrows 102,376 bytes = 999.77 ms.
    expect(limiter.reserve(100 * KiB)).toBe(1000);
    // A second lane asking now waits behind the first: its 10 KiB come after that debt.
    expect(limiter.reserve(10 * KiB)).toBe(1100);
  });

  it('refills with time, never beyond the burst', () => {
    const clock = fakeClock(at(12, 0));
    const limiter = new BandwidthLimiter(parseBandwidthLimit('100k'), clock);
    limiter.reserve(16 * KiB);
    clock.t += 100; // 10 KiB back
    expect(limiter.reserve(10 * KiB)).toBe(0);
    expect(limiter.reserve(10 * KiB)).toBe(100);
    clock.t += 60_000; // a quiet minute: the bucket is full again, not 6 MiB
    expect(limiter.reserve(16 * KiB)).toBe(0);
    expect(limiter.reserve(KiB)).toBe(10);
  });

  it('keeps the average rate over a long transfer of big writes (within 1 %)', async () => {
    const clock = fakeClock(at(12, 0));
    const limiter = new BandwidthLimiter(parseBandwidthLimit('256k'), clock);
    const start = clock.t;
    let sent = 0;
    while (sent < 10 * 1024 * KiB) {
      await limiter.take(255 * KiB);
      sent += 255 * KiB; // leaves now
    }
    const seconds = (clock.t - start) / 1000;
    expect(sent / seconds / (256 * KiB)).toBeGreaterThan(0.99);
    expect(sent / seconds / (256 * KiB)).toBeLessThan(1.01);
  });

  it('follows the schedule: no waiting while off, a full bucket when a limit starts', () => {
    const clock = fakeClock(at(7, 59, 59_000));
    const limiter = new BandwidthLimiter(parseBandwidthLimit('08:00,64k 19:00,off'), clock);
    expect(limiter.reserve(10 * 1024 * KiB)).toBe(0); // 07:59:59, off
    clock.t = at(8, 0);
    expect(limiter.reserve(16 * KiB)).toBe(0);
    expect(limiter.reserve(64 * KiB)).toBe(1000);
    clock.t = at(19, 0);
    expect(limiter.reserve(100 * 1024 * KiB)).toBe(0);
  });

  it('take() passes the wait and the signal to the clock', async () => {
    const clock = fakeClock(at(12, 0));
    const limiter = new BandwidthLimiter(parseBandwidthLimit('100k'), clock);
    await limiter.take(16 * KiB + 100 * KiB);
    expect(clock.slept).toEqual([1000]);
    const aborted = new BandwidthLimiter(parseBandwidthLimit('1k'));
    const controller = new AbortController();
    const waiting = aborted.take(64 * KiB, controller.signal);
    controller.abort(new Error('stopping'));
    await expect(waiting).rejects.toThrow('stopping');
  });
});

describe('BandwidthLimiter order', () => {
  it('resolves takes in the order they were called, even when due in the same millisecond', async () => {
    let now = at(12, 0);
    const timers: Array<{ due: number; resolve: () => void }> = [];
    // A clock whose sleeps end in reverse order of their calls when due together (as timers of
    // different durations may): the limiter must not depend on timer order.
    const clock: BandwidthClock = {
      now: () => now,
      sleep: (ms) => new Promise<void>((resolve) => timers.unshift({ due: now + ms, resolve })),
    };
    const limiter = new BandwidthLimiter(parseBandwidthLimit('16k'), clock);
    limiter.reserve(16 * KiB); // empty the bucket
    const order: number[] = [];
    const takes = [0, 1, 2, 3].map((i) => limiter.take(i === 0 ? 1024 : 1, undefined).then(() => order.push(i)));
    now += 2000;
    for (let round = 0; round < 10; round += 1) {
      for (const timer of timers.splice(0)) timer.resolve();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(takes);
    expect(order).toEqual([0, 1, 2, 3]);
  });
});

describe('bandwidthLimit in the config', () => {
  it('accepts what the parser reads and names the problem otherwise', async () => {
    const { configSchema } = await import('../../src/config/schema.js');
    const base = { watch: [{ file: 'data.csv' }] };
    expect(configSchema.safeParse({ ...base, bandwidthLimit: '08:00,512k 19:00,off' }).success).toBe(true);
    expect(configSchema.safeParse({ ...base, bandwidthLimit: 65536 }).success).toBe(true);
    const bad = configSchema.safeParse({ ...base, bandwidthLimit: '512' });
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error?.issues)).toContain("has no unit: write '512k'");
  });
});
