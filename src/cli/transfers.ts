/**
 * What `pushtask watch` knows about the uploads in flight, from the subtask's `progress` events:
 * bytes, total and a smoothed rate per transfer. Pure (time is passed in), so it is unit-tested.
 */
import type { ProgressEvent } from '../shared/ipc.js';
import type { AgentStatus } from '../subtask/status.js';
import { formatBytes, shortPath } from './format.js';

export interface Transfer {
  file: string;
  remotePath: string;
  bytes: number;
  total: number;
  /** Time since the upload started, as of the last event. */
  ms: number;
  /** When the first progress event arrived. */
  seenAt: number;
  /** Bytes per second, smoothed. */
  rate: number | null;
  lastAt: number;
}

/** Weight of the newest sample in the smoothed rate. */
const RATE_SMOOTHING = 0.3;

export class TransferTracker {
  readonly #transfers = new Map<string, Transfer>();

  progress(event: ProgressEvent, now: number): Transfer {
    const known = this.#transfers.get(event.file);
    if (!known || event.bytes < known.bytes) {
      // The first rate is the average since the upload started.
      const fresh: Transfer = { ...event, seenAt: now, rate: event.ms > 0 ? (event.bytes * 1000) / event.ms : null, lastAt: now };
      this.#transfers.set(event.file, fresh);
      return fresh;
    }
    const seconds = (now - known.lastAt) / 1000;
    if (seconds > 0) {
      const sample = (event.bytes - known.bytes) / seconds;
      known.rate = known.rate === null ? sample : known.rate + RATE_SMOOTHING * (sample - known.rate);
    }
    known.bytes = event.bytes;
    known.total = event.total;
    known.ms = event.ms;
    known.remotePath = event.remotePath;
    known.lastAt = now;
    return known;
  }

  /** The transfer ended (uploaded or failed). */
  done(file: string): void {
    this.#transfers.delete(file);
  }

  clear(): void {
    this.#transfers.clear();
  }

  get list(): Transfer[] {
    return [...this.#transfers.values()];
  }
}

/** `↑ logs/big.bin → big.bin  12.0 MiB of 100 MiB  12 %  5.1 MiB/s` */
export function formatTransfer(transfer: Transfer, base?: string): string {
  const percent = transfer.total > 0 ? Math.floor((transfer.bytes / transfer.total) * 100) : 100;
  const rate = transfer.rate === null ? '' : `  ${formatBytes(Math.round(transfer.rate))}/s`;
  return `↑ ${shortPath(transfer.file, base)} → ${transfer.remotePath}  ${formatBytes(transfer.bytes)} of ${formatBytes(transfer.total)}  ${percent} %${rate}`;
}

/** `queue: 3 file(s), 1.2 MiB waiting, 1 uploading; connected` from status.json (null: not written yet). */
export function formatQueue(status: AgentStatus | null): string {
  if (!status) return 'queue: (no status yet)';
  const { queue, connection, inFlight } = status;
  const waiting = queue.length === 0 ? 'queue: empty' : `queue: ${queue.length} file(s), ${formatBytes(queue.bytes)} waiting`;
  const uploading = inFlight.length ? `, ${inFlight.length} uploading` : '';
  return `${waiting}${uploading}; ${connection.state}`;
}
