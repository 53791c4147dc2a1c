import { describe, expect, it } from 'vitest';
import type { RetryConfig } from '../../src/config/schema.js';
import { PushtaskError } from '../../src/shared/errors.js';
import { retryDelay } from '../../src/shared/retryPolicy.js';

const PYSUBTASK: RetryConfig = {
  strategy: 'pysubtask',
  quickTries: 5,
  quickDelayMs: 3000,
  longDelayMs: 30_000,
  maxDelayMs: 300_000,
};
const EXPONENTIAL: RetryConfig = { ...PYSUBTASK, strategy: 'exponential' };

const transient = new PushtaskError('CONNECT_FAILED', 'ECONNREFUSED');
const authFailed = new PushtaskError('AUTH_FAILED', 'wrong password');
const hostKeyRejected = new PushtaskError('HOST_KEY_REJECTED', 'host key changed');
const low = () => 0;
const high = () => 0.999;

describe('retryDelay, pysubtask strategy', () => {
  it('waits quickDelayMs after failures 1..4 and longDelayMs after the 5th', () => {
    const delays = [1, 2, 3, 4, 5].map((n) => retryDelay(PYSUBTASK, n, transient));
    expect(delays).toEqual([3000, 3000, 3000, 3000, 30_000]);
  });

  it('repeats the pattern forever: long at 5, 10, 15, ..., quick otherwise', () => {
    for (let n = 1; n <= 100; n += 1) {
      expect(retryDelay(PYSUBTASK, n, transient)).toBe(n % 5 === 0 ? 30_000 : 3000);
    }
    expect(retryDelay(PYSUBTASK, 1_000_000, transient)).toBe(30_000);
    expect(retryDelay(PYSUBTASK, 1_000_001, transient)).toBe(3000);
  });

  it('honours other quickTries values', () => {
    const config = { ...PYSUBTASK, quickTries: 2, quickDelayMs: 100, longDelayMs: 900 };
    expect([1, 2, 3, 4, 5, 6].map((n) => retryDelay(config, n, transient))).toEqual([100, 900, 100, 900, 100, 900]);
    const everyTime = { ...PYSUBTASK, quickTries: 1 };
    expect([1, 2, 3].map((n) => retryDelay(everyTime, n, transient))).toEqual([30_000, 30_000, 30_000]);
  });

  it('puts authentication and host-key errors on the long schedule from the first failure', () => {
    for (const n of [1, 2, 3, 4, 5, 6]) {
      expect(retryDelay(PYSUBTASK, n, authFailed)).toBe(30_000);
      expect(retryDelay(PYSUBTASK, n, hostKeyRejected)).toBe(30_000);
    }
  });

  it('recognises the codes after an IPC hop (plain objects, not instances)', () => {
    expect(retryDelay(PYSUBTASK, 1, { code: 'AUTH_FAILED', message: 'x' })).toBe(30_000);
    expect(retryDelay(PYSUBTASK, 1, { code: 'HOST_KEY_REJECTED', message: 'x' })).toBe(30_000);
  });

  it('treats other errors, and non-errors, as transient', () => {
    for (const error of [new Error('boom'), new PushtaskError('UPLOAD_FAILED', 'x'), new PushtaskError('TIMEOUT', 'x'), 'text', null, undefined, 42]) {
      expect(retryDelay(PYSUBTASK, 1, error)).toBe(3000);
    }
  });

  it('does not use the random source', () => {
    let calls = 0;
    retryDelay(PYSUBTASK, 3, transient, () => {
      calls += 1;
      return 0.5;
    });
    expect(calls).toBe(0);
  });
});

describe('retryDelay, exponential strategy', () => {
  it('doubles from quickDelayMs (upper end of the jitter band with random ≈ 1)', () => {
    // ceiling = 3000 * 2^(n-1); delay = round(ceiling/2 + 0.999 * ceiling/2)
    const delays = [1, 2, 3, 4, 5].map((n) => retryDelay(EXPONENTIAL, n, transient, high));
    expect(delays).toEqual([2999, 5997, 11_994, 23_988, 47_976]);
  });

  it('gives exactly half the ceiling with random 0', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7].map((n) => retryDelay(EXPONENTIAL, n, transient, low));
    expect(delays).toEqual([1500, 3000, 6000, 12_000, 24_000, 48_000, 96_000]);
  });

  it('is capped by maxDelayMs', () => {
    // 3000 * 2^7 = 384000 > 300000
    expect(retryDelay(EXPONENTIAL, 8, transient, low)).toBe(150_000);
    expect(retryDelay(EXPONENTIAL, 8, transient, high)).toBe(299_850);
    expect(retryDelay(EXPONENTIAL, 7, transient, high)).toBe(191_904); // 192000 ceiling, below the cap
    const small = { ...EXPONENTIAL, quickDelayMs: 1000, maxDelayMs: 5000 };
    expect([1, 2, 3, 4, 5].map((n) => retryDelay(small, n, transient, low))).toEqual([500, 1000, 2000, 2500, 2500]);
  });

  it('stays finite and capped for huge failure counts', () => {
    for (const n of [31, 32, 100, 10_000, Number.MAX_SAFE_INTEGER]) {
      const delay = retryDelay(EXPONENTIAL, n, transient, high);
      expect(Number.isFinite(delay)).toBe(true);
      expect(delay).toBe(299_850);
    }
  });

  it('always lies within [ceiling/2, ceiling]', () => {
    const randoms = [0, 0.001, 0.25, 0.5, 0.75, 0.999];
    for (let n = 1; n <= 12; n += 1) {
      const ceiling = Math.min(EXPONENTIAL.maxDelayMs, EXPONENTIAL.quickDelayMs * 2 ** (n - 1));
      for (const r of randoms) {
        const delay = retryDelay(EXPONENTIAL, n, transient, () => r);
        expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
        expect(delay).toBeLessThanOrEqual(ceiling);
        expect(Number.isInteger(delay)).toBe(true);
      }
    }
  });

  it('spreads delays with the random source (jitter)', () => {
    expect(retryDelay(EXPONENTIAL, 3, transient, () => 0.5)).toBe(9000); // 6000 + 0.5 * 6000
  });

  it('puts authentication and host-key errors on longDelayMs, not the exponential curve', () => {
    for (const n of [1, 2, 10]) {
      expect(retryDelay(EXPONENTIAL, n, authFailed, low)).toBe(30_000);
      expect(retryDelay(EXPONENTIAL, n, hostKeyRejected, high)).toBe(30_000);
    }
  });
});

describe('server hints', () => {
  it('waits exactly as long as a Retry-After hint says, whatever the failure count', () => {
    const config: RetryConfig = { strategy: 'pysubtask', quickTries: 5, quickDelayMs: 3000, longDelayMs: 30_000, maxDelayMs: 300_000 };
    const limited = new PushtaskError('RATE_LIMITED', 'too many requests', { retryAfterMs: 7000 });
    expect(retryDelay(config, 1, limited)).toBe(7000);
    expect(retryDelay(config, 5, limited)).toBe(7000);
  });
});
