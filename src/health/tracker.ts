/**
 * The subtask's side of the health status: counts what the uploader reports (through the same
 * events the master gets), reads the queue and connection from the live agent, and writes the
 * document into the spool (`health.json`), from where it is uploaded with each heartbeat. The
 * totals are read back from that file at start, so they survive restarts (a crash loses at most
 * what happened since the last heartbeat or stop).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import type { SubtaskEventMap } from '../shared/ipc.js';
import {
  HEALTH_SCHEMA,
  emptyCounters,
  parseHealth,
  serializeHealth,
  type ConnectionStateName,
  type HealthCounters,
  type HealthDocument,
} from './document.js';

export const HEALTH_FILE = 'health.json';
const MiB = 1024 * 1024;

export interface Backlog {
  files: number;
  bytes: number;
  /** ms since epoch, or null when empty. */
  oldestQueuedAt: number | null;
}

/** What the tracker reads from the running agent (status.json's reporter has it all). */
export interface AgentView {
  connection: { state: ConnectionStateName; since: string; nextRetryAt: string | null };
  counters: { notifies: number };
  lastError: { at: string; code: string; message: string } | null;
  startedAt: string;
}

export interface HealthTrackerOptions {
  spoolDir: string;
  name: string;
  heartbeatSec: number;
  version: string;
  agent: () => AgentView;
  backlog: () => Backlog;
  /** Remote paths that are not data (heartbeat, this file): not counted as uploads. */
  ignoredRemotePaths: ReadonlySet<string>;
  now?: () => number;
}

export class HealthTracker {
  readonly file: string;
  readonly #o: HealthTrackerOptions;
  readonly #now: () => number;
  readonly #sinceStart = emptyCounters();
  #total = emptyCounters();
  #lastUploadAt: number | null = null;
  #failingSince: number | null = null;
  /** Files whose last attempt failed (and will be retried). */
  readonly #failing = new Set<string>();
  /** What the last written document said about the backlog and failures. */
  #lastWritten: { files: number; failing: boolean } | null = null;

  constructor(options: HealthTrackerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.file = path.join(options.spoolDir, HEALTH_FILE);
  }

  /** Takes the totals (and last upload) from the file an earlier run left. */
  async load(): Promise<void> {
    const text = await fs.readFile(this.file, 'utf8').catch(() => null);
    if (text === null) return;
    const parsed = parseHealth(text);
    if (!('document' in parsed)) return;
    this.#total = structuredClone(parsed.document.total);
    const last = parsed.document.lastUploadAt ? Date.parse(parsed.document.lastUploadAt) : NaN;
    if (Number.isFinite(last)) this.#lastUploadAt = last;
  }

  /** Fed with every event the subtask emits. */
  observe<K extends keyof SubtaskEventMap>(name: K, payload: SubtaskEventMap[K]): void {
    if (name === 'uploaded') {
      const event = payload as SubtaskEventMap['uploaded'];
      this.#failing.delete(event.file);
      if (this.#failing.size === 0) this.#failingSince = null;
      if (this.#o.ignoredRemotePaths.has(event.remotePath)) return;
      this.#lastUploadAt = this.#now();
      for (const counters of [this.#sinceStart, this.#total]) {
        counters.uploads += 1;
        counters.bytes += event.bytes;
      }
    } else if (name === 'upload-failed') {
      const event = payload as SubtaskEventMap['upload-failed'];
      if (event.willRetry) {
        this.#failing.add(event.file);
        this.#failingSince ??= this.#now();
      }
      for (const counters of [this.#sinceStart, this.#total]) countFailure(counters, event.error.code);
    }
  }

  async document(): Promise<HealthDocument> {
    const agent = this.#o.agent();
    const backlog = this.#o.backlog();
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    return {
      schema: HEALTH_SCHEMA,
      pushtask: this.#o.version,
      name: this.#o.name,
      host: os.hostname(),
      startedAt: agent.startedAt,
      writtenAt: new Date(this.#now()).toISOString(),
      heartbeatSec: this.#o.heartbeatSec,
      connection: { ...agent.connection },
      queue: { files: backlog.files, bytes: backlog.bytes, oldestQueuedAt: iso(backlog.oldestQueuedAt) },
      lastUploadAt: iso(this.#lastUploadAt),
      failingSince: iso(this.#failingSince),
      lastError: agent.lastError ? { at: agent.lastError.at, code: agent.lastError.code, message: agent.lastError.message } : null,
      sinceStart: { ...structuredClone(this.#sinceStart), notifies: agent.counters.notifies },
      total: structuredClone(this.#total),
      spoolDisk: await diskSpace(this.#o.spoolDir),
    };
  }

  /** Writes the document into the spool (atomically) and returns its path. */
  async write(): Promise<string> {
    const document = await this.document();
    await writeFileAtomic(this.file, serializeHealth(document), { mode: 0o600, fsync: false });
    this.#lastWritten = { files: document.queue.files, failing: document.failingSince !== null };
    return this.file;
  }

  /**
   * True when the last document sent showed a backlog or failures and both are gone: the status
   * queued during an outage is uploaded early in the catch-up, so a fresh one should follow it
   * rather than wait for the next heartbeat.
   */
  recovered(): boolean {
    if (!this.#lastWritten || (this.#lastWritten.files === 0 && !this.#lastWritten.failing)) return false;
    return this.#failingSince === null && this.#o.backlog().files === 0;
  }
}

function countFailure(counters: HealthCounters, code: string): void {
  counters.failures += 1;
  counters.failuresByCode[code] = (counters.failuresByCode[code] ?? 0) + 1;
}

async function diskSpace(dir: string): Promise<HealthDocument['spoolDisk']> {
  try {
    const stats = await fs.statfs(dir);
    // Whole MiB: byte-exact free space would make every write anywhere on the disk a change.
    const mib = (bytes: number) => Math.floor(bytes / MiB) * MiB;
    return { freeBytes: mib(stats.bavail * stats.bsize), totalBytes: mib(stats.blocks * stats.bsize) };
  } catch {
    return null;
  }
}
