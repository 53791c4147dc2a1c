import { describe, expect, it } from 'vitest';
import { HEALTHY_AFTER_MS, RESTART_MAX_MS, RESTART_MIN_MS, RestartBackoff } from '../../src/master/restartBackoff.js';

/** Simulates a child that starts at `t`, lives `uptimeMs`, dies, and is restarted after the delay. */
function crashLoop(backoff: RestartBackoff, crashes: number, uptimeMs: number, startAt = 0) {
  const delays: number[] = [];
  let t = startAt;
  for (let i = 0; i < crashes; i += 1) {
    backoff.started(t);
    t += uptimeMs;
    const delay = backoff.onExit(t);
    delays.push(delay);
    t += delay;
  }
  return { delays, t };
}

describe('RestartBackoff', () => {
  it('uses the documented constants', () => {
    expect(RESTART_MIN_MS).toBe(1000);
    expect(RESTART_MAX_MS).toBe(60_000);
    expect(HEALTHY_AFTER_MS).toBe(60_000);
  });

  it('restarts after 1 s the first time', () => {
    const backoff = new RestartBackoff();
    backoff.started(5000);
    expect(backoff.onExit(5200)).toBe(1000);
  });

  it('doubles in a crash loop and is capped at 60 s', () => {
    const { delays } = crashLoop(new RestartBackoff(), 10, 100);
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000]);
  });

  it('goes back to 1 s once the child stayed up for 60 s', () => {
    const backoff = new RestartBackoff();
    const { delays, t } = crashLoop(backoff, 5, 100);
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16_000]);
    backoff.started(t);
    expect(backoff.onExit(t + 60_000)).toBe(1000);
    // and doubles again from there
    backoff.started(t + 61_000);
    expect(backoff.onExit(t + 61_500)).toBe(2000);
  });

  it('resets from the cap too', () => {
    const backoff = new RestartBackoff();
    const { t } = crashLoop(backoff, 9, 10);
    backoff.started(t);
    expect(backoff.onExit(t + 10)).toBe(60_000);
    backoff.started(t + 100_000);
    expect(backoff.onExit(t + 200_000)).toBe(1000);
  });

  it('an uptime just under 60 s still counts as a crash loop', () => {
    const backoff = new RestartBackoff();
    const { delays } = crashLoop(backoff, 4, HEALTHY_AFTER_MS - 1);
    expect(delays).toEqual([1000, 2000, 4000, 8000]);
  });

  it('a healthy child that keeps dying after long uptimes always gets 1 s', () => {
    const { delays } = crashLoop(new RestartBackoff(), 5, 120_000);
    expect(delays).toEqual([1000, 1000, 1000, 1000, 1000]);
  });

  it('an exit without a recorded start counts as zero uptime', () => {
    const backoff = new RestartBackoff();
    expect(backoff.onExit(1_000_000)).toBe(1000);
    expect(backoff.onExit(2_000_000)).toBe(2000);
  });

  it('measures uptime from the latest start only', () => {
    const backoff = new RestartBackoff();
    backoff.started(0);
    expect(backoff.onExit(10)).toBe(1000);
    backoff.started(100_000); // the old start at 0 must not make this look healthy
    expect(backoff.onExit(100_010)).toBe(2000);
  });
});
