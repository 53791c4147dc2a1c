/**
 * `status.json` in the spool: what the agent is doing, for `pushtask status` and for people.
 * Written atomically and at most every 250 ms; error texts are scrubbed of secrets. Not fsynced:
 * it is information, rewritten at every start, and an fsync 4 times a second competed with the
 * snapshots' own.
 */
import path from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import type { ErrorInfo } from '../shared/errors.js';
import { payloadBytes } from '../spool/spool.js';

export const STATUS_FILE = 'status.json';
const WRITE_EVERY_MS = 250;
const MAX_LISTED_QUEUE = 100;
/**
 * Per-file entries kept: the most recently active files (and whatever is in flight). A drop folder
 * that received thousands of files made the map, rewritten up to 4 times a second, grow for ever;
 * the counters keep the totals.
 */
export const MAX_LISTED_FILES = 100;

export type ConnectionState = 'disconnected' | 'connecting' | 'connected' | 'waiting-to-retry';

export interface QueueItem {
  file: string;
  remotePath: string;
  bytes: number;
  queuedAt: string;
}

export interface FileStatus {
  lastUpload?: { at: string; bytes: number; ms: number; remotePath: string };
  lastError?: { at: string } & ErrorInfo;
}

export interface AgentStatus {
  pid: number;
  startedAt: string;
  updatedAt: string;
  running: boolean;
  transport: string;
  connection: { state: ConnectionState; since: string; nextRetryAt: string | null };
  queue: { length: number; bytes: number; items: QueueItem[] };
  inFlight: (QueueItem & { startedAt: string })[];
  counters: { notifies: number; uploads: number; bytesUploaded: number; failures: number };
  heartbeat: { file: string; nextDueAt: string } | null;
  lastError: ({ at: string; file?: string } & ErrorInfo) | null;
  /** The last upload and error of the most recently active files (at most MAX_LISTED_FILES, plus those in flight). */
  files: Record<string, FileStatus>;
  /** Files whose entries were dropped from `files` to keep it bounded (they count in `counters`). */
  olderFiles?: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

export class StatusReporter {
  readonly file: string;
  readonly status: AgentStatus;
  #timer: NodeJS.Timeout | null = null;
  #writing: Promise<void> = Promise.resolve();
  #queueSource: (() => QueueSource) | null = null;

  constructor(spoolDir: string) {
    this.file = path.join(spoolDir, STATUS_FILE);
    const now = iso(Date.now());
    this.status = {
      pid: process.pid,
      startedAt: now,
      updatedAt: now,
      running: true,
      transport: '',
      connection: { state: 'disconnected', since: now, nextRetryAt: null },
      queue: { length: 0, bytes: 0, items: [] },
      inFlight: [],
      counters: { notifies: 0, uploads: 0, bytesUploaded: 0, failures: 0 },
      heartbeat: null,
      lastError: null,
      files: {},
      olderFiles: 0,
    };
  }

  setTransport(description: string): void {
    this.status.transport = description;
  }

  setConnection(state: ConnectionState, nextRetryAt: number | null = null): void {
    if (this.status.connection.state !== state) this.status.connection.since = iso(Date.now());
    this.status.connection.state = state;
    this.status.connection.nextRetryAt = nextRetryAt === null ? null : iso(nextRetryAt);
    this.changed();
  }

  /**
   * Where the queue is read from when status.json is written: the uploader's live collections.
   * Building the listing on every queue change cost O(queue) per upload (milliseconds per file
   * with a 1,000-file backlog); it is built at most once per write instead.
   */
  setQueueSource(source: () => QueueSource): void {
    this.#queueSource = source;
  }

  countNotify(): void {
    this.status.counters.notifies += 1;
    this.changed();
  }

  recordUpload(file: string, remotePath: string, bytes: number, ms: number): void {
    this.status.counters.uploads += 1;
    this.status.counters.bytesUploaded += bytes;
    this.#file(file).lastUpload = { at: iso(Date.now()), bytes, ms, remotePath };
    this.changed();
  }

  recordError(error: ErrorInfo, file?: string): void {
    const at = iso(Date.now());
    this.status.counters.failures += 1;
    this.status.lastError = { at, ...(file ? { file } : {}), ...error };
    if (file) this.#file(file).lastError = { at, ...error };
    this.changed();
  }

  setHeartbeat(file: string, nextDueAt: number): void {
    this.status.heartbeat = { file, nextDueAt: iso(nextDueAt) };
    this.changed();
  }

  /** The file's entry, moved to the end: `files` stays ordered by last activity. */
  #file(file: string): FileStatus {
    const entry = this.status.files[file] ?? {};
    delete this.status.files[file];
    this.status.files[file] = entry;
    return entry;
  }

  /** Drops the least recently active entries beyond MAX_LISTED_FILES; never one in flight. */
  #trimFiles(): void {
    const names = Object.keys(this.status.files);
    let excess = names.length - MAX_LISTED_FILES;
    if (excess <= 0) return;
    const inFlight = new Set(this.status.inFlight.map((item) => item.file));
    for (const name of names) {
      if (excess <= 0) break;
      if (inFlight.has(name)) continue;
      delete this.status.files[name];
      this.status.olderFiles = (this.status.olderFiles ?? 0) + 1;
      excess -= 1;
    }
  }

  /** Schedules a write; many changes in a burst cost one write. */
  changed(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.flush();
    }, WRITE_EVERY_MS);
  }

  async flush(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    this.status.updatedAt = iso(Date.now());
    if (this.#queueSource) this.#readQueue(this.#queueSource());
    if (!this.status.running) this.status.inFlight = [];
    this.#trimFiles();
    const content = JSON.stringify(this.status, null, 2);
    this.#writing = this.#writing
      .then(() => writeFileAtomic(this.file, content, { mode: 0o600, fsync: false }))
      .catch(() => {
        // A status file we could not write must not stop deliveries; the next write retries.
      });
    await this.#writing;
  }

  #readQueue({ pending, inFlight }: QueueSource): void {
    const items: QueueItem[] = [];
    let length = 0;
    let bytes = 0;
    for (const item of pending) {
      length += 1;
      bytes += payloadBytes(item);
      if (items.length < MAX_LISTED_QUEUE) items.push(toQueueItem(item));
    }
    this.status.queue = { length, bytes, items };
    this.status.inFlight = [...inFlight].map(({ snapshot, startedAt }) => ({ ...toQueueItem(snapshot), startedAt: iso(startedAt) }));
  }

  async close(): Promise<void> {
    this.status.running = false;
    // A stopped agent has no connection (nor a retry planned): never "stopped" and "connecting".
    this.status.connection = { state: 'disconnected', since: iso(Date.now()), nextRetryAt: null };
    await this.flush();
  }
}

export interface QueueSource {
  /** Waiting, in upload order. */
  pending: Iterable<SpoolItem>;
  inFlight: Iterable<{ snapshot: SpoolItem; startedAt: number }>;
}

interface SpoolItem {
  source: string;
  remotePath: string;
  size: number;
  appendFrom?: number;
  queuedAt: number;
}

function toQueueItem(item: SpoolItem): QueueItem {
  return { file: item.source, remotePath: item.remotePath, bytes: payloadBytes(item), queuedAt: iso(item.queuedAt) };
}
