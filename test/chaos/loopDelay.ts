/**
 * Event-loop delay as bucket counts, so the samples of several processes can be pooled: the chaos
 * suite kills its host process again and again, and no single host may live long enough for a
 * p99 of its own (perf_hooks' histogram cannot be merged). The host and the bare baseline process
 * both measure with this, so their figures compare.
 */

/** Bucket width; delays beyond the last bucket land in it (the max is kept exactly). */
const BUCKET_MS = 0.25;
const BUCKETS = 4000; // up to 1 s
const TICK_MS = 1;

export interface LoopDelay {
  /** Sparse: bucket index → samples. */
  counts: Record<number, number>;
  samples: number;
  maxMs: number;
}

export const emptyLoopDelay = (): LoopDelay => ({ counts: {}, samples: 0, maxMs: 0 });

/**
 * Samples how late a 1 ms timer fires, from `delayMs` on; calls `report` with the cumulative
 * figures every `everyMs`.
 */
export function sampleLoopDelay(report: (delay: LoopDelay) => void, { delayMs = 0, everyMs = 250 } = {}): void {
  const delay = emptyLoopDelay();
  let due = 0;
  const tick = () => {
    const now = performance.now();
    const late = Math.max(0, now - due);
    const bucket = Math.min(BUCKETS - 1, Math.floor(late / BUCKET_MS));
    delay.counts[bucket] = (delay.counts[bucket] ?? 0) + 1;
    delay.samples += 1;
    delay.maxMs = Math.max(delay.maxMs, late);
    due = now + TICK_MS;
    setTimeout(tick, TICK_MS);
  };
  setTimeout(() => {
    due = performance.now() + TICK_MS;
    setTimeout(tick, TICK_MS);
    setInterval(() => report(delay), everyMs);
  }, delayMs);
}

export function mergeLoopDelays(...delays: LoopDelay[]): LoopDelay {
  const merged = emptyLoopDelay();
  for (const delay of delays) {
    for (const [bucket, count] of Object.entries(delay.counts)) merged.counts[Number(bucket)] = (merged.counts[Number(bucket)] ?? 0) + count;
    merged.samples += delay.samples;
    merged.maxMs = Math.max(merged.maxMs, delay.maxMs);
  }
  return merged;
}

/** The upper edge of the bucket holding the `percent`th percentile; 0 without samples. */
export function percentileMs(delay: LoopDelay, percent: number): number {
  const rank = Math.ceil((percent / 100) * delay.samples);
  let seen = 0;
  for (const bucket of Object.keys(delay.counts).map(Number).sort((a, b) => a - b)) {
    seen += delay.counts[bucket]!;
    if (seen >= rank) return (bucket + 1) * BUCKET_MS;
  }
  return 0;
}
