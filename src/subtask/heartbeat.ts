/**
 * Heartbeats: `<name>.heartbeat` in the data folder holds the seconds until the next one is due
 * (`intervalSec + 10`); a monitor calls a client offline once now > the remote file's mtime + that.
 */
import writeFileAtomic from 'write-file-atomic';
import path from 'node:path';
import { HEARTBEAT_SUFFIX } from '../shared/sidecar.js';

export function heartbeatFile(dataDir: string, name: string): string {
  return path.join(dataDir, `${name}${HEARTBEAT_SUFFIX}`);
}

/** Seconds a monitor should wait for the next heartbeat before calling the client offline. */
export function heartbeatGraceSec(intervalSec: number): number {
  return intervalSec + 10;
}

export class HeartbeatSchedule {
  readonly #intervalMs: number;
  #nextDueAt: number;

  /** The first heartbeat is due at once. */
  constructor(intervalSec: number, now: number) {
    this.#intervalMs = intervalSec * 1000;
    this.#nextDueAt = now;
  }

  get nextDueAt(): number {
    return this.#nextDueAt;
  }

  /** True when a heartbeat is due at `now`; schedules the next one. */
  take(now: number): boolean {
    if (this.#intervalMs <= 0 || now < this.#nextDueAt) return false;
    // Never fire twice to catch up after a long stall: one beat, then a full interval.
    this.#nextDueAt = now + this.#intervalMs;
    return true;
  }
}

export async function writeHeartbeat(file: string, intervalSec: number): Promise<void> {
  await writeFileAtomic(file, `${heartbeatGraceSec(intervalSec)}\n`);
}
