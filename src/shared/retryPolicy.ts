/**
 * The retry policy as a pure function: (failure number, error) → delay before the next try.
 * Retries never give up on their own; only stop() ends them.
 */
import type { RetryConfig } from '../config/schema.js';
import { isPermanentLooking } from './errors.js';

/**
 * @param failures how many tries have failed in a row (1 after the first failure)
 * @param random a source of [0, 1) for jitter (injected for tests)
 */
export function retryDelay(config: RetryConfig, failures: number, error: unknown, random: () => number = Math.random): number {
  const hint = (error as { retryAfterMs?: unknown } | null)?.retryAfterMs;
  if (typeof hint === 'number' && hint >= 0) return hint;
  if (isPermanentLooking(error)) return config.longDelayMs;
  if (config.strategy === 'exponential') {
    const ceiling = Math.min(config.maxDelayMs, config.quickDelayMs * 2 ** Math.min(failures - 1, 30));
    // "Full jitter": spreads reconnects of many clients after a shared outage.
    return Math.round(ceiling / 2 + random() * (ceiling / 2));
  }
  // pysubtask: `quickTries` tries a short wait apart, then one long wait, then another set.
  return failures % config.quickTries === 0 ? config.longDelayMs : config.quickDelayMs;
}
