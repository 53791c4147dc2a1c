/**
 * Upload progress as events: a transport reports bytes as often as it likes (every SFTP write
 * request, every FTP chunk); the master hears of a transfer only once it has run for `everyMs`,
 * then at most once per `everyMs`. Short uploads, the common case, cost no event at all.
 */
import type { ProgressEvent } from '../shared/ipc.js';

/** At most four progress events per second and transfer. */
export const PROGRESS_EVERY_MS = 250;

export interface ProgressReporterOptions {
  file: string;
  remotePath: string;
  total: number;
  emit: (event: ProgressEvent) => void;
  /** @default PROGRESS_EVERY_MS */
  everyMs?: number;
  /** @default Date.now */
  now?: () => number;
}

/** The `onProgress` callback for one upload. */
export function progressReporter(options: ProgressReporterOptions): (bytesSent: number) => void {
  const { file, remotePath, total, emit, everyMs = PROGRESS_EVERY_MS, now = Date.now } = options;
  const started = now();
  let last = started;
  return (bytes) => {
    const at = now();
    if (at - last < everyMs) return;
    last = at;
    emit({ file, remotePath, bytes, total, ms: at - started });
  };
}
