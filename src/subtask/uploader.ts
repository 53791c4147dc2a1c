/**
 * The upload lanes: take snapshots from the spool queue, keep connections open, retry per the
 * retry policy until stopped, close connections after the dead time, and delete a snapshot only
 * after its transport confirmed the upload. Transports stay free of all of this.
 *
 * The state machine, in one place (status.json shows `state`; every rule has a unit test in
 * test/unit/uploader-lanes.test.ts, on a fake transport and a manual clock):
 *
 *   idle ──work──▶ connecting ──ok──▶ connected ──stop(graceful)──▶ draining ──▶ stopped
 *                   │    ▲                │  ▲
 *          connect  │    │ retry time     │  │ Retry-After has passed
 *          failed   ▼    │                ▼  │
 *                  failed (until T)      paused (until T)
 *
 * - connecting: one lane opens one connection (one login). While nothing is connected only one
 *   lane ever tries, so a server that is down or refuses our password is not hammered.
 * - connected: lanes = min(transfers, files in flight + files ready); a lane that is connecting
 *   counts, so one file (a heartbeat) opens one connection, and more open only when more work is
 *   queued than the lanes running carry. A lane with nothing to take closes nothing (dead time does).
 * - lost: a connection that worked and died (CONNECTION_LOST: closed, reset, keepalives
 *   unanswered, stalled) is replaced at once, without a retry wait: the server was reachable a
 *   moment ago. A second loss on that lane before it delivered anything goes through the retry
 *   schedule, like any other failure.
 * - failed (until T): a failed connect or upload waits per `retry` (retryPolicy.ts).
 * - paused (until T): a 429 / Retry-After pauses every lane until T (the transport also holds
 *   back its own requests, e.g. Dropbox's upload-session chunks).
 * - draining: graceful stop delivers the queue while uploads succeed, and stops at the first failure.
 * - dead time: connections idle for `deadTimeMs` without notifies, heartbeats or uploads are closed.
 * Two snapshots of the same file are never in flight at once, so an older one can never land
 * after a newer one.
 */
import type { RetryConfig } from '../config/schema.js';
import { sleep, withTimeout } from '../shared/abort.js';
import { systemClock, type Clock } from '../shared/clock.js';
import type { ErrorInfo } from '../shared/errors.js';
import type { SubtaskEventMap } from '../shared/ipc.js';
import type { Logger } from '../shared/logger.js';
import { retryDelay } from '../shared/retryPolicy.js';
import type { Ledger } from '../spool/ledger.js';
import { payloadBytes, type Snapshot, type Spool } from '../spool/spool.js';
import type { Transport } from '../transports/types.js';
import { appendSnapshot } from './appendUpload.js';
import { progressReporter } from './progress.js';
import type { StatusReporter } from './status.js';

/**
 * Uploads of snapshots this big record their remote temporary name in the spool first, so a
 * crash mid-upload does not leave the temporary file on the server for good. Smaller ones skip
 * it: a record costs a few file-system calls, and their strays are small and rare.
 */
const RECORD_REMOTE_TEMP_BYTES = 1024 * 1024;

export type Emit = <K extends keyof SubtaskEventMap>(name: K, payload: SubtaskEventMap[K]) => void;

export interface UploaderOptions {
  /** Makes one connection's transport; called once per lane. */
  createTransport: () => Transport;
  /** Parallel lanes. */
  transfers: number;
  spool: Pick<Spool, 'remove' | 'recordRemoteTemp'>;
  ledger: Pick<Ledger, 'recordDelivered' | 'saveSoon' | 'forget' | 'file'>;
  status: Pick<StatusReporter, 'setQueueSource' | 'setConnection' | 'recordError' | 'recordUpload' | 'changed'>;
  retry: RetryConfig;
  operationTimeoutMs: number;
  deadTimeMs: number;
  logger: Logger;
  emit: Emit;
  /** Turns any error into what may be shown (secrets scrubbed). */
  describeError: (error: unknown) => ErrorInfo;
  /**
   * Append mode: this delta cannot be sent (the remote file cannot be continued with it, and the
   * ledger entry of its source is forgotten; or the delta is damaged): take a new snapshot.
   */
  requestSnapshot: (snapshot: Snapshot) => void;
  /** The transport confirmed this snapshot and the ledger records it (drop folders' `afterUpload`). */
  onDelivered?: (snapshot: Snapshot) => void;
  /**
   * The slowest rate one upload can count on under `bandwidthLimit` (its lowest rate shared by all
   * lanes), bytes per second: an upload's timeout allows for it. Absent: no limit.
   */
  slowestBytesPerSecond?: number;
  /** Time for every wait, timeout and record. @default the system clock */
  clock?: Clock;
  /**
   * Files that will be snapshotted once the queue has room (snapshotLookahead.ts): listed and
   * counted behind the queue, in status.json and the backlog.
   */
  waiting?: () => Iterable<QueuedFile>;
  /** The queue changed (a snapshot came, went up or was dropped). */
  onQueueChanged?: () => void;
}

/** What the status and backlog need of a snapshot, or of a file waiting for one. */
type QueuedFile = Pick<Snapshot, 'kind' | 'source' | 'remotePath' | 'size' | 'appendFrom' | 'queuedAt'>;

/** The uploader as a whole (see the module comment). */
export type UploaderState = 'idle' | 'connecting' | 'connected' | 'failed' | 'paused' | 'draining' | 'stopped';

interface Lane {
  id: number;
  transport: Transport;
  /** closed → connecting → open; back to closed on a failure, dead time or stop. */
  state: 'closed' | 'connecting' | 'open';
  /** This lane's connection was lost and replaced at once, and nothing was delivered since. */
  replacedAfterLoss: boolean;
  /** Append mode: remote files whose end was compared with ours on this connection. */
  trusted: Set<string>;
  loop: Promise<void> | null;
}

export class Uploader {
  readonly #o: UploaderOptions;
  readonly #clock: Clock;
  readonly #now: () => number;
  /** When the retry wait of a failure ends (state `failed` until then). */
  #retryAt = 0;
  readonly #lanes: Lane[] = [];
  /** Insertion-ordered; a newer snapshot of the same id takes the older one's place. */
  #pending = new Map<string, Snapshot>();
  /** Snapshots being uploaded, with when each started. */
  readonly #inFlight = new Map<string, { snapshot: Snapshot; startedAt: number }>();
  /** Failures in a row while nothing could be delivered; drives the retry schedule. */
  #failures = 0;
  #lastActivityAt: number;
  /** A server asked everyone to wait (429 Retry-After): rate limits are per account, not per lane. */
  #pausedUntil = 0;
  #stopping = false;
  #connects = 0;
  /** Graceful stop: deliver what is queued while uploads succeed; stop at the first failure. */
  #draining = false;
  /** Aborts retry waits (graceful stop). */
  readonly #waits = new AbortController();
  /** Aborts network operations (hard stop). */
  readonly #operations = new AbortController();

  constructor(options: UploaderOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#now = () => this.#clock.now();
    this.#lastActivityAt = this.#now();
    options.status.setQueueSource(() => ({ pending: this.#queuedFiles(), inFlight: this.#inFlight.values() }));
  }

  get description(): string {
    return this.#lane(0).transport.description;
  }

  get connected(): boolean {
    return this.#lanes.some((lane) => lane.state === 'open');
  }

  /** Where the state machine is (module comment). */
  get state(): UploaderState {
    if (this.#stopping) return 'stopped';
    if (this.#draining) return 'draining';
    const now = this.#now();
    if (this.#pausedUntil > now) return 'paused';
    if (this.connected) return 'connected';
    if (this.#retryAt > now) return 'failed';
    if (this.#lanes.some((lane) => lane.state === 'connecting' || lane.loop)) return 'connecting';
    return 'idle';
  }

  /** Connections (logins) opened so far: one per successful or failed connect. */
  get connectsStarted(): number {
    return this.#connects;
  }

  get idle(): boolean {
    return this.#pending.size === 0 && this.#inFlight.size === 0;
  }

  /** Snapshots waiting for a lane. */
  get queued(): number {
    return this.#pending.size;
  }

  /** The queue in upload order, then the files still to be snapshotted. */
  *#queuedFiles(): Generator<QueuedFile> {
    yield* this.#pending.values();
    if (this.#o.waiting) yield* this.#o.waiting();
  }

  /** Data waiting or being uploaded (heartbeats and status files not counted), for the health status. */
  backlog(): { files: number; bytes: number; oldestQueuedAt: number | null } {
    let files = 0;
    let bytes = 0;
    let oldestQueuedAt: number | null = null;
    const count = (snapshot: QueuedFile) => {
      if (snapshot.kind === 'heartbeat') return;
      files += 1;
      bytes += payloadBytes(snapshot);
      if (oldestQueuedAt === null || snapshot.queuedAt < oldestQueuedAt) oldestQueuedAt = snapshot.queuedAt;
    };
    for (const snapshot of this.#queuedFiles()) count(snapshot);
    for (const { snapshot } of this.#inFlight.values()) count(snapshot);
    return { files, bytes, oldestQueuedAt };
  }

  /** A notify or heartbeat happened: the connection is wanted for a while longer. */
  noteActivity(): void {
    this.#lastActivityAt = this.#now();
  }

  /**
   * Work is coming (a notify, a drop-folder file): connect now, while its snapshot is being taken,
   * instead of after it (an SSH login is 50–300 ms; a 1 GiB snapshot takes seconds).
   */
  warmUp(): void {
    if (this.#stopping || this.connected || this.#lanes.some((lane) => lane.loop) || this.#retryAt > this.#now()) return;
    const lane = this.#lane(0);
    // This lane is the one that will carry the file being snapshotted: #kick counts it as running.
    lane.loop = this.#connect(lane)
      .then(() => undefined)
      .finally(() => {
        lane.loop = null;
        this.#kick();
      });
  }

  enqueue(snapshot: Snapshot): void {
    const superseded = this.#pending.get(snapshot.id);
    if (superseded) void this.#discard(superseded, 'a newer snapshot replaces it');
    this.#pending.set(snapshot.id, snapshot);
    this.noteActivity();
    this.#publish();
    this.#kick();
  }

  #lane(index: number): Lane {
    while (this.#lanes.length <= index) {
      this.#lanes.push({ id: this.#lanes.length, transport: this.#o.createTransport(), state: 'closed', replacedAfterLoss: false, trusted: new Set(), loop: null });
    }
    return this.#lanes[index]!;
  }

  /** Starts lanes up to #lanesWanted, preferring lanes whose connection is open. */
  #kick(): void {
    if (this.#stopping) return;
    const wanted = this.#lanesWanted();
    const running = () => this.#lanes.filter((lane) => lane.loop).length;
    if (running() >= wanted) return;
    for (let index = 0; index < this.#o.transfers; index += 1) this.#lane(index);
    const idle = this.#lanes.filter((lane) => !lane.loop).sort((a, b) => Number(b.state === 'open') - Number(a.state === 'open'));
    for (const lane of idle) {
      if (running() >= wanted) break;
      lane.loop = this.#run(lane).finally(() => {
        lane.loop = null;
        if (this.#available() > 0) this.#kick();
      });
    }
  }

  /**
   * Lanes worth running: none without work; one while nothing is connected (only one lane
   * tries); else one per file in flight or ready, up to `transfers`. A running lane (connecting,
   * or about to take a file) counts, so it is never joined by a second login for the same file.
   */
  #lanesWanted(): number {
    const ready = this.#available(this.#o.transfers);
    const work = this.#inFlight.size + ready;
    if (ready === 0) return 0;
    if (!this.connected) return 1;
    return Math.min(this.#o.transfers, work);
  }

  /** Snapshots ready to go (not waiting behind an upload of the same file), counted up to `upTo`. */
  #available(upTo = 1): number {
    let count = 0;
    for (const id of this.#pending.keys()) {
      if (!this.#inFlight.has(id) && (count += 1) >= upTo) break;
    }
    return count;
  }

  #take(): Snapshot | null {
    for (const [id, snapshot] of this.#pending) {
      if (this.#inFlight.has(id)) continue;
      this.#pending.delete(id);
      this.#inFlight.set(id, { snapshot, startedAt: this.#now() });
      this.#publish();
      return snapshot;
    }
    return null;
  }

  async #run(lane: Lane): Promise<void> {
    while (!this.#stopping && this.#available() > 0) {
      const pause = this.#pausedUntil - this.#now();
      if (pause > 0) {
        await sleep(pause, this.#waits.signal, this.#clock);
        if (this.connected && this.#pausedUntil <= this.#now()) this.#o.status.setConnection('connected');
        continue;
      }
      if (lane.state !== 'open') {
        // Not connected: only one lane connects while nothing is connected; extra lanes only
        // when the work needs them (#lanesWanted).
        if (!this.connected && this.#lanes.some((other) => other !== lane && other.state === 'connecting')) return;
        if (this.connected && this.#lanesRunningOpen() >= this.#lanesWanted()) return;
        if (!(await this.#connect(lane)) && this.connected) return; // another lane carries on; don't add to the load
        continue; // a pause may have begun while connecting
      }
      const snapshot = this.#take();
      if (!snapshot) return;
      try {
        await this.#upload(lane, snapshot);
        lane.replacedAfterLoss = false;
      } catch (error) {
        const keepGoing = await this.#afterFailure(lane, snapshot, error);
        if (!keepGoing) return;
      } finally {
        this.#inFlight.delete(snapshot.id);
        this.#publish();
      }
    }
  }

  /** Running lanes other than those still to connect: the ones that carry or will carry a file. */
  #lanesRunningOpen(): number {
    return this.#lanes.filter((lane) => lane.loop && lane.state === 'open').length;
  }

  async #connect(lane: Lane): Promise<boolean> {
    const { operationTimeoutMs, logger, status } = this.#o;
    const wasConnected = this.connected;
    if (!wasConnected) status.setConnection('connecting');
    lane.state = 'connecting';
    this.#connects += 1;
    try {
      await withTimeout(
        (signal) => lane.transport.connect(signal),
        operationTimeoutMs,
        this.#operations.signal,
        `Connecting to ${lane.transport.description}`,
        this.#clock,
      );
      lane.state = 'open';
      this.#retryAt = 0;
      lane.trusted.clear();
      if (!wasConnected) {
        status.setConnection('connected');
        logger.info(`Connected to ${lane.transport.description}`);
        this.#o.emit('connected', { target: lane.transport.description });
      }
      this.#kick();
      return true;
    } catch (error) {
      lane.state = 'closed';
      await lane.transport.close();
      if (this.connected) {
        logger.debug(`Extra connection ${lane.id} to ${lane.transport.description} failed: ${this.#o.describeError(error).message}`);
        return false;
      }
      const first = this.#pending.values().next().value as Snapshot | undefined;
      await this.#waitBeforeRetry(error, first?.source);
      return false;
    }
  }

  async #upload(lane: Lane, snapshot: Snapshot): Promise<void> {
    const { operationTimeoutMs, spool, ledger, logger, status } = this.#o;
    const started = this.#now();
    const bytes = await withTimeout(
      (signal) => this.#send(lane, snapshot, signal),
      uploadTimeout(operationTimeoutMs, payloadBytes(snapshot), this.#o.slowestBytesPerSecond),
      this.#operations.signal,
      `Upload of ${snapshot.source} to ${lane.transport.description} as ${snapshot.remotePath}`,
      this.#clock,
    );
    if (bytes === null) {
      // This delta cannot be sent: a new snapshot replaces it.
      this.#failures = 0;
      await spool.remove(snapshot);
      this.#o.requestSnapshot(snapshot);
      return;
    }
    const ms = this.#now() - started;
    this.#failures = 0;
    // Confirmed by the transport: only now may the snapshot go.
    await spool.remove(snapshot);
    if (snapshot.kind !== 'heartbeat') {
      ledger.recordDelivered(snapshot.source, {
        size: snapshot.size,
        mtimeMs: snapshot.mtimeMs,
        remotePath: snapshot.remotePath,
        snapshotAt: snapshot.queuedAt,
        deliveredAt: this.#now(),
        ...(snapshot.tailHash === undefined ? {} : { tailHash: snapshot.tailHash }),
      });
      ledger.saveSoon((error) => logger.warn({ err: error }, `Could not save ${ledger.file}; a restart may upload files twice`));
      this.#o.onDelivered?.(snapshot);
    }
    status.recordUpload(snapshot.source, snapshot.remotePath, bytes, ms);
    const how = snapshot.appendFrom === undefined ? '' : ' appended';
    logger.info(`Uploaded ${snapshot.source} → ${snapshot.remotePath} (${bytes} bytes${how}, ${ms} ms)`);
    this.#o.emit('uploaded', { file: snapshot.source, remotePath: snapshot.remotePath, bytes, ms });
  }

  /**
   * Sends a snapshot: a whole file replaces the remote one atomically; a delta is appended.
   * Returns the bytes sent, or null when a delta cannot be sent: it cannot continue the remote file
   * (the ledger entry is forgotten, so the next snapshot is the whole file), or it is damaged.
   */
  async #send(lane: Lane, snapshot: Snapshot, signal: AbortSignal): Promise<number | null> {
    const { transport } = lane;
    const replace = async () =>
      (
        await transport.upload({
          localPath: snapshot.dataPath,
          remotePath: snapshot.remotePath,
          mtime: new Date(snapshot.mtimeMs),
          signal,
          onProgress: this.#progress(snapshot),
          ...(snapshot.size >= RECORD_REMOTE_TEMP_BYTES && { onTemporaryName: (remoteTemp: string) => this.#o.spool.recordRemoteTemp(snapshot, remoteTemp) }),
        })
      ).bytes;
    if (snapshot.appendFrom === undefined) return replace();
    const outcome = transport.append
      ? await appendSnapshot(snapshot, { appender: transport.append, trusted: lane.trusted, signal })
      : ({ kind: 'needs-whole', reason: `${transport.description} cannot append` } as const);
    if (outcome.kind === 'appended') return outcome.bytes;
    if (outcome.kind === 'bad-snapshot') {
      this.#o.logger.error(`Snapshot of ${snapshot.source} is damaged (${outcome.reason}); taking it again`);
      return null;
    }
    if (snapshot.appendFrom === 0) {
      // This snapshot is the whole file.
      if (transport.append && !outcome.reason.endsWith('not on the server yet')) {
        this.#o.logger.warn(`Replacing ${snapshot.remotePath} on ${transport.description} with the whole of ${snapshot.source}: ${outcome.reason}`);
      }
      const bytes = await replace();
      lane.trusted.add(snapshot.remotePath);
      return bytes;
    }
    this.#o.logger.warn(`${snapshot.remotePath} on ${transport.description} cannot be continued (${outcome.reason}); uploading the whole of ${snapshot.source} instead`);
    this.#o.ledger.forget(snapshot.source);
    return null;
  }

  /** Requeues (or drops, if superseded) the snapshot; returns whether this lane should go on. */
  async #afterFailure(lane: Lane, snapshot: Snapshot, error: unknown): Promise<boolean> {
    // No longer in flight before it is queued again: the backlog (health, status) counts it once,
    // also while this lane waits out the retry delay below.
    this.#inFlight.delete(snapshot.id);
    if ((error as { code?: unknown }).code === 'UNSAFE_PATH') return this.#refuse(snapshot, error);
    if (this.#pending.has(snapshot.id)) {
      await this.#discard(snapshot, 'a newer snapshot replaced it');
    } else {
      // At the back: a file that fails by itself (a name the server refuses) must not hold up the others.
      this.#pending.set(snapshot.id, snapshot);
    }
    if (this.#operations.signal.aborted) return false;
    const info = this.#o.describeError(error);
    const retryAfterMs = (error as { retryAfterMs?: unknown }).retryAfterMs;
    if (typeof retryAfterMs === 'number' && info.code === 'RATE_LIMITED' && !this.#draining) {
      // paused: every lane waits until the server's time has passed; the connection is fine.
      this.#pausedUntil = Math.max(this.#pausedUntil, this.#now() + retryAfterMs);
      this.#o.status.recordError(info, snapshot.source);
      this.#o.status.setConnection('waiting-to-retry', this.#pausedUntil);
      this.#o.logger.warn(`${info.message} [${info.code}]; every upload to ${lane.transport.description} waits ${formatDelay(retryAfterMs)}`);
      this.#o.emit('upload-failed', { file: snapshot.source, error: info, willRetry: true });
      return true;
    }
    if (typeof retryAfterMs === 'number') this.#pausedUntil = Math.max(this.#pausedUntil, this.#now() + retryAfterMs);
    const lost = info.code === 'CONNECTION_LOST' && !lane.replacedAfterLoss && !this.#draining;
    await this.#disconnect(lane, 'error', info.message);
    if (this.connected || this.#lanes.some((other) => other !== lane && other.state === 'connecting')) {
      // Other connections work (or one is being opened): report, let them take the file, and retire this lane.
      this.#o.status.recordError(info, snapshot.source);
      this.#o.logger.warn(`${info.message} [${info.code}]; another connection retries it`);
      this.#o.emit('upload-failed', { file: snapshot.source, error: info, willRetry: true });
      return false;
    }
    if (lost) {
      // The server was reachable a moment ago: replace the connection now, not after a retry wait.
      lane.replacedAfterLoss = true;
      this.#o.status.recordError(info, snapshot.source);
      this.#o.logger.warn(`${info.message} [${info.code}]; reconnecting now`);
      this.#o.emit('upload-failed', { file: snapshot.source, error: info, willRetry: true });
      return true;
    }
    await this.#waitBeforeRetry(error, snapshot.source);
    return true;
  }

  /**
   * The transport can never send this file under its name (checked before any I/O, so the
   * connection is fine): report it once, drop the snapshot (the source keeps the data) and go on.
   */
  async #refuse(snapshot: Snapshot, error: unknown): Promise<boolean> {
    const info = this.#o.describeError(error);
    await this.#discard(snapshot, info.message);
    this.#o.status.recordError(info, snapshot.source);
    this.#o.logger.error(`${info.message} [${info.code}]; ${snapshot.source} is not uploaded: rename it to deliver it`);
    this.#o.emit('upload-failed', { file: snapshot.source, error: info, willRetry: false });
    return true;
  }

  async #waitBeforeRetry(error: unknown, file: string | undefined): Promise<void> {
    const { logger, status, retry } = this.#o;
    if (this.#stopping) return;
    if (this.#draining) {
      // Stopping: no retry waits. What is left stays in the spool for the next start.
      this.#stopping = true;
      const info = this.#o.describeError(error);
      status.recordError(info, file);
      logger.warn(`${info.message} [${info.code}]; stopping now, queued files stay in the spool for the next start`);
      return;
    }
    this.#failures += 1;
    const info = this.#o.describeError(error);
    const delay = retryDelay(retry, this.#failures, error);
    this.#retryAt = this.#now() + delay;
    status.recordError(info, file);
    status.setConnection('waiting-to-retry', this.#now() + delay);
    logger.warn(
      `${info.message} [${info.code}] (${this.description}; failure ${this.#failures} in a row). ` +
        `Retrying in ${formatDelay(delay)}; queued files stay in the spool.`,
    );
    if (file) this.#o.emit('upload-failed', { file, error: info, willRetry: true });
    await sleep(delay, this.#waits.signal, this.#clock);
  }

  async #discard(snapshot: Snapshot, why: string): Promise<void> {
    this.#o.logger.debug(`Dropping snapshot ${snapshot.dataPath} of ${snapshot.source}: ${why}`);
    await this.#o.spool.remove(snapshot).catch(() => undefined);
  }

  async #disconnect(lane: Lane, reason: 'dead-time' | 'error' | 'stop', detail?: string): Promise<void> {
    const wasConnected = lane.state === 'open';
    lane.state = 'closed';
    await lane.transport.close();
    if (wasConnected && !this.connected) {
      this.#o.status.setConnection('disconnected');
      this.#o.logger.info(`Disconnected from ${lane.transport.description} (${reason}${detail ? `: ${detail}` : ''})`);
      this.#o.emit('disconnected', { reason, ...(detail ? { detail } : {}) });
    }
  }

  /** Closes idle connections after `deadTimeMs` without notifies, heartbeats or uploads. */
  async checkDeadTime(): Promise<void> {
    if (!this.connected || !this.idle || this.#lanes.some((lane) => lane.loop)) return;
    if (this.#now() - this.#lastActivityAt < this.#o.deadTimeMs) return;
    for (const lane of this.#lanes) await this.#disconnect(lane, 'dead-time');
  }

  /**
   * Graceful: uploads go on until the queue is empty or one fails. Hard: those in flight are
   * aborted. Either way every snapshot not confirmed stays in the spool for the next start.
   */
  async stop({ graceful }: { graceful: boolean }): Promise<void> {
    this.#waits.abort();
    if (graceful) {
      // Deliver the queue while uploads succeed (bounded by the master's graceful timeout).
      this.#draining = true;
      this.#pausedUntil = 0;
      this.#kick();
      while (this.#lanes.some((lane) => lane.loop)) await Promise.all(this.#lanes.map((lane) => lane.loop));
    }
    this.#stopping = true;
    if (!graceful) this.#operations.abort();
    await Promise.all(this.#lanes.map((lane) => lane.loop));
    for (const lane of this.#lanes) await this.#disconnect(lane, 'stop');
  }

  /** status.json reads the queue itself when it is written (throttled). */
  #publish(): void {
    this.#o.status.changed();
    this.#o.onQueueChanged?.();
  }

  /** The upload's `onProgress`: throttled `progress` events for the master (`pushtask watch` shows them). */
  #progress(snapshot: Snapshot): (bytesSent: number) => void {
    const { source: file, remotePath, size: total } = snapshot;
    return progressReporter({ file, remotePath, total, emit: (event) => this.#o.emit('progress', event), now: this.#now });
  }
}

/**
 * A big file gets more time than one operation: at least 1 MB/s before we call it stuck, or the
 * bandwidth limit's slowest share when that is less.
 */
function uploadTimeout(operationTimeoutMs: number, bytes: number, slowestBytesPerSecond = Infinity): number {
  return operationTimeoutMs + Math.ceil(bytes / Math.min(1_000_000, slowestBytesPerSecond)) * 1000;
}

function formatDelay(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 100) / 10} s`;
}
