/**
 * Log files that rotate by size and can be reopened (for logrotate). Rotation is
 * rotating-file-stream's "classical" mode — `pushtask-master.log` stays the live file and the
 * rotated ones are `pushtask-master.log.1` (newest) … `.N`, the names logrotate itself uses — so
 * `tail -F` and existing tooling keep working. pino-roll was the alternative; it numbers the live
 * file itself (`.1.log`, `.2.log`, …), so the live log would have no fixed name.
 *
 * One stream per file per process: `pushtask watch` writes its own lines into the master's log
 * file, and two streams rotating one file would rename it under each other.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createStream, type RotatingFileStream } from 'rotating-file-stream';

export interface RotationOptions {
  /** Rotate once the live file reaches this size; 0 never rotates (leave it to logrotate). */
  maxBytes: number;
  /** Rotated files kept beside the live one. */
  keep: number;
}

export class LogFile {
  readonly file: string;
  readonly #rotation: RotationOptions;
  readonly #onError: (error: Error) => void;
  #stream: RotatingFileStream;

  constructor(file: string, rotation: RotationOptions, onError: (error: Error) => void) {
    this.file = file;
    this.#rotation = rotation;
    this.#onError = onError;
    this.#stream = this.#open();
  }

  #open(): RotatingFileStream {
    const { maxBytes, keep } = this.#rotation;
    const base = path.basename(this.file);
    // Classical rotation calls the generator with the rotation's index, or null for the live name.
    const name = (index: number | Date | null) => (typeof index === 'number' && index > 0 ? `${base}.${index}` : base);
    const stream = createStream(name, {
      path: path.dirname(this.file),
      mode: 0o600,
      ...(maxBytes > 0 ? { size: `${maxBytes}B`, rotate: keep } : {}),
    });
    // A log file that cannot be written (folder deleted, disk full) must never crash the host app.
    stream.on('error', (error: Error) => this.#onError(error));
    return stream;
  }

  /** pino's multistream calls this with one serialised line. */
  write(line: string): void {
    if (this.#stream.destroyed || this.#stream.writableEnded) return;
    this.#stream.write(line);
  }

  /**
   * Closes the file and opens its name again: after logrotate moved it away, lines go to a new
   * file under the old name. Lines written meanwhile go to the new stream; the old one finishes
   * its own first.
   */
  reopen(): void {
    const old = this.#stream;
    this.#stream = this.#open();
    old.end();
  }

  /** Writes what is buffered and closes the file (bounded: a stuck disk must not hold up an exit). */
  close(timeoutMs = 2000): Promise<void> {
    const stream = this.#stream;
    if (stream.destroyed || stream.writableFinished) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref();
      stream.end(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

const open = new Map<string, LogFile>();

/** The process's one LogFile for `file` (created owner-only, its folder too). */
export function logFile(file: string, rotation: RotationOptions, onError: (error: Error) => void): LogFile {
  const absolute = path.resolve(file);
  let log = open.get(absolute);
  if (!log) {
    fs.mkdirSync(path.dirname(absolute), { recursive: true, mode: 0o700 });
    log = new LogFile(absolute, rotation, onError);
    open.set(absolute, log);
  }
  return log;
}

/** SIGUSR1 (logrotate's `postrotate`): every log file of this process is opened again. */
export function reopenLogFiles(): number {
  for (const log of open.values()) log.reopen();
  return open.size;
}

/** Before the process exits: what was logged reaches the files. */
export async function closeLogFiles(timeoutMs?: number): Promise<void> {
  const logs = [...open.values()];
  open.clear();
  await Promise.all(logs.map((log) => log.close(timeoutMs)));
}
