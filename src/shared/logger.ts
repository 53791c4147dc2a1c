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
import { logFile, type RotationOptions } from './logFiles.js';
import { printable } from './printable.js';
import { REDACT_PATHS, scrubSecrets } from './secrets.js';

export type { Logger };

export interface LoggerOptions {
  name: 'master' | 'subtask' | 'cli';
  level: LogLevel;
  /** JSON log file; created owner-only, rotated by size (see logFiles.ts). */
  file?: string;
  /** Size rotation of `file`. @default DEFAULT_ROTATION */
  rotation?: RotationOptions;
  console: boolean;
  /** Secret values to scrub from every line. */
  secrets?: readonly string[];
  /** Where console lines go. @default process.stderr */
  consoleStream?: NodeJS.WritableStream;
}

export const DEFAULT_ROTATION: RotationOptions = { maxBytes: 10 * 1024 * 1024, keep: 5 };

export function createLogger(options: LoggerOptions): Logger {
  const streams: pino.StreamEntry[] = [];
  if (options.file) {
    let warned = false;
    const warn = (error: Error) => {
      if (warned) return;
      warned = true;
      process.stderr.write(`pushtask: cannot write log file ${options.file}: ${error.message}\n`);
    };
    try {
      streams.push({ level: 'trace', stream: logFile(options.file, options.rotation ?? DEFAULT_ROTATION, warn) });
    } catch (error) {
      // A log folder that cannot be created must never crash the host app either.
      warn(error as Error);
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
