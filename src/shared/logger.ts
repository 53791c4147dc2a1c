/**
 * Structured logs: JSON lines to a file, human-readable lines to the console. Known secret
 * values are scrubbed from every line before it is written, whatever logged them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { LogLevel } from '../config/schema.js';
import { printable } from './printable.js';
import { REDACT_PATHS, scrubSecrets } from './secrets.js';

export type { Logger };

export interface LoggerOptions {
  name: 'master' | 'subtask' | 'cli';
  level: LogLevel;
  /** JSON log file; created owner-only. */
  file?: string;
  console: boolean;
  /** Secret values to scrub from every line. */
  secrets?: readonly string[];
  /** Synchronous writes (the subtask: a crash must not eat the line that explains it). */
  sync?: boolean;
  /** Where console lines go. @default process.stderr */
  consoleStream?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const streams: pino.StreamEntry[] = [];
  if (options.file) {
    fs.mkdirSync(path.dirname(options.file), { recursive: true, mode: 0o700 });
    // A log file that cannot be written (folder deleted, disk full) must never crash the host app.
    let warned = false;
    const warn = (error: Error) => {
      if (warned) return;
      warned = true;
      process.stderr.write(`pushtask: cannot write log file ${options.file}: ${error.message}\n`);
    };
    // Opened here, synchronously: a destination whose asynchronous open failed buffers every line
    // forever and throws "sonic boom is not ready yet" from pino's exit hook, in the host process.
    let fd: number | null = null;
    try {
      fd = fs.openSync(options.file, 'a', 0o600);
    } catch (error) {
      warn(error as Error);
    }
    if (fd !== null) {
      const destination = pino.destination({ dest: fd, sync: options.sync ?? false });
      destination.on('error', warn);
      streams.push({ level: 'trace', stream: destination });
    }
  }
  if (options.console) {
    const target = options.consoleStream ?? process.stderr;
    streams.push({
      level: 'trace',
      stream: pretty({
        sync: true,
        destination: forwardTo(target) as never,
        colorize: Boolean(target === process.stderr && process.stderr.isTTY),
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname,component',
        // Messages carry file names anyone can choose: no terminal escapes or forged lines.
        messageFormat: (log: Record<string, unknown>, messageKey: string) => `[${String(log.component)}] ${printable(String(log[messageKey] ?? ''))}`,
      }),
    });
  }
  const secrets = options.secrets ?? [];
  return pino(
    {
      level: options.level,
      base: { component: options.name, pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      ...(secrets.length ? { hooks: { streamWrite: (line: string) => scrubSecrets(line, secrets) } } : {}),
    },
    streams.length ? pino.multistream(streams) : pino.destination({ dest: '/dev/null', sync: false }),
  );
}

/**
 * pino-pretty pipes into its destination, which adds five listeners to it per logger that are
 * never removed: with process.stderr as the destination, a host creating TaskMasters one after
 * another got MaxListenersExceededWarning after ten. A small stream of our own per logger takes
 * those listeners and forwards each line.
 */
function forwardTo(target: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      target.write(chunk);
      callback();
    },
  });
}

/** A logger that drops everything (tests, library users who pass none). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
