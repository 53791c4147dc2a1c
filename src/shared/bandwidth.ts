/**
 * The agent-wide bandwidth limit (`bandwidthLimit`): one token bucket per agent, shared by every
 * upload lane, so four lanes together send no more than the limit. Transports call `take(bytes)`
 * right before bytes leave (an SFTP WRITE, a chunk of an FTP data stream, a Dropbox request body).
 *
 * The limit is a rate or a time-of-day schedule written as rclone's `--bwlimit` is:
 * `"512k"`, `"08:00,512k 19:00,off"`. Suffixes are binary (k = KiB, M = MiB, G = GiB; B = bytes);
 * `off` (or 0) is no limit. Times are local, the last entry of a day runs on until the first one of
 * the next. Unlike rclone, a bare number inside a string is refused: rclone reads it as KiB/s and
 * a number in the config means bytes/s, so `"512"` would be ambiguous.
 *
 * The bucket lends: a write bigger than what is in it goes out once its debt is paid back, so
 * writes of any size (an SFTP WRITE is up to 255 KiB) keep the average rate, in the order they
 * asked. It holds at most BURST_MS of the rate (at least MIN_BURST_BYTES), so a small CSV delivery
 * after a quiet spell passes at once and a long transfer stays within a few percent of the limit.
 */

/** Bytes per second, or null for no limit. */
export type Rate = number | null;

export interface ScheduleEntry {
  /** Minutes after local midnight when this rate starts. */
  minute: number;
  rate: Rate;
}

/** Entries in increasing `minute` order; one entry with minute 0 is a plain rate all day. */
export type BandwidthSchedule = readonly ScheduleEntry[];

export interface BandwidthClock {
  /** Milliseconds since the epoch (local time of day is taken from it). */
  now(): number;
  /** Waits `ms`; rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

const BURST_MS = 50;
const MIN_BURST_BYTES = 16 * 1024;

const UNITS: Record<string, number> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/**
 * Parses a `bandwidthLimit` value: a number (bytes per second) or an rclone-style string. Throws an
 * Error naming the part it could not read.
 */
export function parseBandwidthLimit(value: number | string): BandwidthSchedule {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new Error(`bandwidthLimit ${value}: expected bytes per second (a positive number), or 'off'`);
    return [{ minute: 0, rate: value === 0 ? null : value }];
  }
  const parts = value.trim().split(/\s+/).filter(Boolean);
  if (parts.length === 0) throw new Error("bandwidthLimit '': expected a rate such as '512k', or a schedule such as '08:00,512k 19:00,off'");
  if (parts.length === 1 && !parts[0]!.includes(',')) return [{ minute: 0, rate: parseRate(parts[0]!) }];
  const schedule: ScheduleEntry[] = [];
  for (const part of parts) {
    const match = /^(\d{1,2}):(\d{2}),(.+)$/.exec(part);
    if (!match) {
      const weekday = /^[a-z]{3}-/i.test(part) ? ' (weekday entries are not supported)' : '';
      throw new Error(`bandwidthLimit '${value}': cannot read '${part}'${weekday}: expected HH:MM,rate entries separated by spaces, e.g. '08:00,512k 19:00,off'`);
    }
    const hours = Number(match[1]);
    const minutes = Number(match[2]);
    if (hours > 23 || minutes > 59) throw new Error(`bandwidthLimit '${value}': '${match[1]}:${match[2]}' is not a time of day (00:00 to 23:59)`);
    const minute = hours * 60 + minutes;
    const previous = schedule[schedule.length - 1];
    if (previous && minute <= previous.minute) throw new Error(`bandwidthLimit '${value}': times must increase ('${part}' comes after ${formatMinute(previous.minute)})`);
    schedule.push({ minute, rate: parseRate(match[3]!, value) });
  }
  return schedule;
}

/** One rate: `off`, `0`, or a number with a unit suffix (`512k`, `1.5M`, `800B`); `up:down` takes `up`. */
function parseRate(text: string, whole: string = text): Rate {
  const upload = text.split(':')[0]!; // rclone's upload:download form: pushtask only sends
  if (/^off$/i.test(upload) || upload === '0') return null;
  const match = /^(\d+(?:\.\d+)?)([bkmgt])?$/i.exec(upload);
  if (!match) throw new Error(`bandwidthLimit '${whole}': cannot read the rate '${text}': expected e.g. '512k', '10M' or 'off'`);
  if (!match[2]) {
    throw new Error(
      `bandwidthLimit '${whole}': the rate '${upload}' has no unit: write '${upload}k' (KiB/s, what rclone reads) or '${upload}B' (bytes/s), or give bytes per second as a number`,
    );
  }
  const bytes = Number(match[1]) * UNITS[match[2].toLowerCase()]!;
  if (bytes < 1) throw new Error(`bandwidthLimit '${whole}': the rate '${upload}' is less than one byte per second`);
  return bytes;
}

function formatMinute(minute: number): string {
  return `${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}`;
}

/** The rate at local time `date`: the last entry at or before it, else the day's last entry (from the night before). */
export function rateAt(schedule: BandwidthSchedule, date: Date): Rate {
  const minute = date.getHours() * 60 + date.getMinutes();
  let rate = schedule[schedule.length - 1]?.rate ?? null;
  for (const entry of schedule) {
    if (entry.minute > minute) break;
    rate = entry.rate;
  }
  return rate;
}

/** The lowest rate the schedule ever allows, or null if it never limits. */
export function lowestRate(schedule: BandwidthSchedule): Rate {
  const rates = schedule.map((entry) => entry.rate).filter((rate): rate is number => rate !== null);
  return rates.length ? Math.min(...rates) : null;
}

export const systemClock: BandwidthClock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal!.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

/** The token bucket shared by every lane of one agent. */
export class BandwidthLimiter {
  readonly schedule: BandwidthSchedule;
  readonly #clock: BandwidthClock;
  /** Bytes that may leave now; negative while earlier writes still pay back what they borrowed. */
  #tokens = 0;
  #updatedAt = 0;
  #rate: Rate = null;
  /** The last take() handed out: the next one resolves after it. */
  #last: Promise<void> = Promise.resolve();

  constructor(schedule: BandwidthSchedule, clock: BandwidthClock = systemClock) {
    this.schedule = schedule;
    this.#clock = clock;
  }

  /**
   * Reserves `bytes` and returns how long (ms) the caller must wait before sending them; 0 while
   * no limit applies. Callers that reserve later wait behind earlier ones.
   */
  reserve(bytes: number): number {
    const now = this.#clock.now();
    const rate = rateAt(this.schedule, new Date(now));
    if (rate === null) {
      this.#rate = null;
      return 0;
    }
    const burst = Math.max(MIN_BURST_BYTES, (rate * BURST_MS) / 1000);
    if (this.#rate === null) {
      this.#tokens = burst; // a limit starts (at start, or at a scheduled time): a full bucket
    } else {
      this.#tokens = Math.min(burst, this.#tokens + ((now - this.#updatedAt) * rate) / 1000);
    }
    this.#rate = rate;
    this.#updatedAt = now;
    this.#tokens -= bytes;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens * 1000) / rate);
  }

  /**
   * Waits until `bytes` may leave; rejects with the signal's reason if it aborts meanwhile. Takes
   * resolve strictly in the order they were called (each after the one before), so writes issued
   * in offset order leave in offset order even when two are due in the same millisecond.
   */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    const due = this.#clock.now() + this.reserve(bytes);
    const turn = this.#last.then(async () => {
      const left = due - this.#clock.now();
      if (left > 0) await this.#clock.sleep(left, signal);
    });
    this.#last = turn.catch(() => undefined);
    return turn;
  }
}

/** The agent's limiter, or null when `bandwidthLimit` is not set. */
export function bandwidthLimiterFor(limit: number | string | undefined): BandwidthLimiter | null {
  return limit === undefined ? null : new BandwidthLimiter(parseBandwidthLimit(limit));
}
