/**
 * The health status a client uploads with each heartbeat: `.pushtask/<name>.json` below the remote
 * folder, beside the pysubtask-compatible `<name>.heartbeat`. A stable, documented format (README,
 * "Health status file"): fields are only ever added; a change in meaning raises `schema`.
 * Always under HEALTH_MAX_BYTES, so a monitor of a thousand clients reads little.
 */
import { z } from 'zod';

export const HEALTH_SCHEMA = 1;
export const HEALTH_MAX_BYTES = 2048;
/** Remote folder (below remoteDir) of the status files; a dot folder, so data consumers skip it. */
export const HEALTH_DIR = '.pushtask';
/** Longest error message kept (the log has the whole one). */
const MAX_MESSAGE = 240;
/** Failure codes kept per counter set: the most frequent ones (pushtask's codes are few). */
const MAX_CODES = 8;

export type ConnectionStateName = 'disconnected' | 'connecting' | 'connected' | 'waiting-to-retry';

export interface HealthCounters {
  /** Uploads of data (heartbeats and status files not counted). */
  uploads: number;
  bytes: number;
  /** Failed uploads and connection attempts. */
  failures: number;
  failuresByCode: Record<string, number>;
}

export interface HealthDocument {
  schema: typeof HEALTH_SCHEMA;
  /** pushtask's version on the client. */
  pushtask: string;
  /** The heartbeat name. */
  name: string;
  host: string;
  /** When this subtask started (ISO). */
  startedAt: string;
  /** When this document was made (client clock, ISO). */
  writtenAt: string;
  /** Seconds the heartbeat holds (interval + 10). */
  heartbeatSec: number;
  connection: { state: ConnectionStateName; since: string; nextRetryAt: string | null };
  /** Snapshots waiting or being uploaded (heartbeats and status files not counted). */
  queue: { files: number; bytes: number; oldestQueuedAt: string | null };
  /** Last successful upload of data (ISO), in this run or an earlier one. */
  lastUploadAt: string | null;
  /** Uploads are failing since then (ISO); null once every failing file got through. */
  failingSince: string | null;
  /** The most recent error, kept after recovery (see failingSince); secrets scrubbed. */
  lastError: { at: string; code: string; message: string } | null;
  sinceStart: HealthCounters & { notifies: number };
  /** Since the spool was created (kept in the spool across restarts). */
  total: HealthCounters;
  /** Free space on the spool's file system. */
  spoolDisk: { freeBytes: number; totalBytes: number } | null;
}

export function healthRemotePath(name: string): string {
  return `${HEALTH_DIR}/${name}.json`;
}

export function emptyCounters(): HealthCounters {
  return { uploads: 0, bytes: 0, failures: 0, failuresByCode: {} };
}

/** The JSON text of a document, cut to fit HEALTH_MAX_BYTES (long names, messages, many codes). */
export function serializeHealth(document: HealthDocument): string {
  const doc: HealthDocument = structuredClone(document);
  doc.name = cut(doc.name, 100);
  doc.host = cut(doc.host, 100);
  doc.pushtask = cut(doc.pushtask, 40);
  if (doc.lastError) doc.lastError = { ...doc.lastError, code: cut(doc.lastError.code, 40), message: cut(doc.lastError.message, MAX_MESSAGE) };
  doc.sinceStart.failuresByCode = topCodes(doc.sinceStart.failuresByCode, MAX_CODES);
  doc.total.failuresByCode = topCodes(doc.total.failuresByCode, MAX_CODES);
  let text = JSON.stringify(doc);
  // Still too big only with pathological names (JSON escapes can make one character six bytes):
  // give up detail, never the size bound.
  for (let max = 60; Buffer.byteLength(text) > HEALTH_MAX_BYTES; max = Math.floor(max / 2)) {
    doc.sinceStart.failuresByCode = topCodes(doc.sinceStart.failuresByCode, max > 8 ? 2 : 0);
    doc.total.failuresByCode = topCodes(doc.total.failuresByCode, max > 8 ? 2 : 0);
    if (doc.lastError) doc.lastError = { ...doc.lastError, code: cut(doc.lastError.code, max), message: cut(doc.lastError.message, max) };
    doc.name = cut(doc.name, max);
    doc.host = cut(doc.host, max);
    doc.pushtask = cut(doc.pushtask, max);
    text = JSON.stringify(doc);
  }
  return text;
}

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function topCodes(codes: Record<string, number>, max: number): Record<string, number> {
  // Codes are identifiers (CONNECT_FAILED, ECONNRESET): anything else in one is replaced.
  const entries = Object.entries(codes).map(([code, count]) => [cut(code.replace(/[^\w.-]/g, '_'), 40), count] as const);
  if (max <= 0) return {};
  if (entries.length <= max) return Object.fromEntries(entries);
  entries.sort((a, b) => b[1] - a[1]);
  const kept = entries.slice(0, max - 1);
  const other = entries.slice(max - 1).reduce((sum, [, count]) => sum + count, 0);
  return Object.fromEntries([...kept, ['OTHER', other]]);
}

const iso = z.string().max(40);
const count = z.number().nonnegative();
const countersSchema = z.object({
  uploads: count,
  bytes: count,
  failures: count,
  failuresByCode: z.record(z.string().max(40), count),
});

/**
 * What a monitor accepts as a status file: the fields it shows must have their types; unknown
 * fields (a newer agent) are kept out of the way, not rejected.
 */
export const healthDocumentSchema = z.object({
  schema: z.number().int().positive(),
  pushtask: z.string().max(40),
  name: z.string().max(100),
  host: z.string().max(100),
  startedAt: iso,
  writtenAt: iso,
  heartbeatSec: z.number().nonnegative(),
  connection: z.object({
    state: z.enum(['disconnected', 'connecting', 'connected', 'waiting-to-retry']),
    since: iso,
    nextRetryAt: iso.nullable(),
  }),
  queue: z.object({ files: count, bytes: count, oldestQueuedAt: iso.nullable() }),
  lastUploadAt: iso.nullable(),
  failingSince: iso.nullable(),
  lastError: z.object({ at: iso, code: z.string().max(40), message: z.string().max(MAX_MESSAGE) }).nullable(),
  sinceStart: countersSchema.extend({ notifies: count }),
  total: countersSchema,
  spoolDisk: z.object({ freeBytes: count, totalBytes: count }).nullable(),
});

/**
 * A status file's text as a document, or a problem text; never throws. A newer agent's document
 * (higher `schema`, more fields) is read for the fields this version knows.
 */
export function parseHealth(text: string): { document: HealthDocument } | { problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { problem: 'the status file is not JSON' };
  }
  const parsed = healthDocumentSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { problem: `the status file's ${issue.path.join('.') || 'content'} is not valid (${issue.message})` };
  }
  return { document: parsed.data as HealthDocument };
}
