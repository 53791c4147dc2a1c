/**
 * The upload lane: takes snapshots from the spool queue, keeps the transport connected, retries
 * per the retry policy until stopped, closes the connection after the dead time, and deletes a
 * snapshot only after the transport confirmed it. Transports stay free of all of this.
 */
import type { RetryConfig } from '../config/schema.js';
import { sleep, withTimeout } from '../shared/abort.js';
import type { ErrorInfo } from '../shared/errors.js';
import type { SubtaskEventMap } from '../shared/ipc.js';
import type { Logger } from '../shared/logger.js';
import { retryDelay } from '../shared/retryPolicy.js';
import type { Ledger } from '../spool/ledger.js';
import type { Snapshot, Spool } from '../spool/spool.js';
import type { Transport } from '../transports/types.js';
import type { StatusReporter } from './status.js';

export type Emit = <K extends keyof SubtaskEventMap>(name: K, payload: SubtaskEventMap[K]) => void;

export interface UploaderOptions {
  transport: Transport;
  spool: Spool;
  ledger: Ledger;
  status: StatusReporter;
  retry: RetryConfig;
  operationTimeoutMs: number;
  deadTimeMs: number;
  logger: Logger;
  emit: Emit;
  /** Turns any error into what may be shown (secrets scrubbed). */
  describeError: (error: unknown) => ErrorInfo;
  now?: () => number;
}

export class Uploader {
  readonly #o: UploaderOptions;
  readonly #now: () => number;
  /** Insertion-ordered; a newer snapshot of the same id takes the older one's place. */
  #pending = new Map<string, Snapshot>();
  #inFlight: Snapshot | null = null;
  #connected = false;
  #failures = 0;
  #lastActivityAt: number;
  #loop: Promise<void> | null = null;
  #stopping = false;
  /** Aborts retry waits (graceful stop). */
  readonly #waits = new AbortController();
  /** Aborts network operations (hard stop). */
  readonly #operations = new AbortController();

  constructor(options: UploaderOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#lastActivityAt = this.#now();
  }

  get connected(): boolean {
    return this.#connected;
  }

  get idle(): boolean {
    return this.#pending.size === 0 && this.#inFlight === null;
  }

  /** A notify or heartbeat happened: the connection is wanted for a while longer. */
  noteActivity(): void {
    this.#lastActivityAt = this.#now();
  }

  enqueue(snapshot: Snapshot): void {
    const superseded = this.#pending.get(snapshot.id);
    if (superseded) void this.#discard(superseded, 'a newer snapshot replaces it');
    this.#pending.set(snapshot.id, snapshot);
    this.noteActivity();
    this.#publishQueue();
    this.#kick();
  }

  #kick(): void {
    if (this.#loop || this.#stopping) return;
    this.#loop = this.#run().finally(() => {
      this.#loop = null;
      if (this.#pending.size && !this.#stopping) this.#kick();
    });
  }

  async #run(): Promise<void> {
    while (this.#pending.size && !this.#stopping) {
      if (!this.#connected && !(await this.#connect())) continue;
      const next = this.#pending.values().next().value as Snapshot;
      this.#pending.delete(next.id);
      this.#inFlight = next;
      this.#o.status.setInFlight(next);
      this.#publishQueue();
      try {
        await this.#upload(next);
      } catch (error) {
        await this.#afterFailure(next, error);
      } finally {
        this.#inFlight = null;
        this.#o.status.setInFlight(null);
      }
    }
  }

  async #connect(): Promise<boolean> {
    const { transport, operationTimeoutMs, logger, status } = this.#o;
    status.setConnection('connecting');
    try {
      await withTimeout((signal) => transport.connect(signal), operationTimeoutMs, this.#operations.signal, `Connecting to ${transport.description}`);
      this.#connected = true;
      status.setConnection('connected');
      logger.info(`Connected to ${transport.description}`);
      this.#o.emit('connected', { target: transport.description });
      return true;
    } catch (error) {
      await transport.close();
      const first = this.#pending.values().next().value as Snapshot | undefined;
      await this.#waitBeforeRetry(error, first?.source);
      return false;
    }
  }

  async #upload(snapshot: Snapshot): Promise<void> {
    const { transport, operationTimeoutMs, spool, ledger, logger, status } = this.#o;
    const started = this.#now();
    const { bytes } = await withTimeout(
      (signal) =>
        transport.upload({ localPath: snapshot.dataPath, remotePath: snapshot.remotePath, mtime: new Date(snapshot.mtimeMs), signal }),
      operationTimeoutMs,
      this.#operations.signal,
      `Upload of ${snapshot.source} to ${transport.description} as ${snapshot.remotePath}`,
    );
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
      });
      void ledger.save().catch((error) => logger.warn({ err: error }, `Could not save ${ledger.file}; a restart may upload files twice`));
    }
    status.recordUpload(snapshot.source, snapshot.remotePath, bytes, ms);
    logger.info(`Uploaded ${snapshot.source} → ${snapshot.remotePath} (${bytes} bytes, ${ms} ms)`);
    this.#o.emit('uploaded', { file: snapshot.source, remotePath: snapshot.remotePath, bytes, ms });
  }

  async #afterFailure(snapshot: Snapshot, error: unknown): Promise<void> {
    if (this.#pending.has(snapshot.id)) {
      // A newer snapshot of the same file arrived meanwhile: it supersedes this one.
      await this.#discard(snapshot, 'a newer snapshot replaced it');
    } else {
      this.#pending = new Map([[snapshot.id, snapshot], ...this.#pending]);
      this.#publishQueue();
    }
    if (this.#operations.signal.aborted) return;
    await this.#disconnect('error', this.#o.describeError(error).message);
    await this.#waitBeforeRetry(error, snapshot.source);
  }

  async #waitBeforeRetry(error: unknown, file: string | undefined): Promise<void> {
    const { logger, status, retry, transport } = this.#o;
    if (this.#stopping) return;
    this.#failures += 1;
    const info = this.#o.describeError(error);
    const delay = retryDelay(retry, this.#failures, error);
    status.recordError(info, file);
    status.setConnection('waiting-to-retry', this.#now() + delay);
    logger.warn(
      `${info.message} [${info.code}] (${transport.description}; failure ${this.#failures} in a row). ` +
        `Retrying in ${Math.round(delay / 1000)} s; the file stays queued in the spool.`,
    );
    if (file) this.#o.emit('upload-failed', { file, error: info, willRetry: true });
    await sleep(delay, this.#waits.signal);
  }

  async #discard(snapshot: Snapshot, why: string): Promise<void> {
    this.#o.logger.debug(`Dropping snapshot ${snapshot.dataPath} of ${snapshot.source}: ${why}`);
    await this.#o.spool.remove(snapshot).catch(() => undefined);
  }

  async #disconnect(reason: 'dead-time' | 'error' | 'stop', detail?: string): Promise<void> {
    const wasConnected = this.#connected;
    this.#connected = false;
    await this.#o.transport.close();
    this.#o.status.setConnection('disconnected');
    if (wasConnected) {
      this.#o.logger.info(`Disconnected from ${this.#o.transport.description} (${reason}${detail ? `: ${detail}` : ''})`);
      this.#o.emit('disconnected', { reason, ...(detail ? { detail } : {}) });
    }
  }

  /** Closes an idle connection after `deadTimeMs` without notifies, heartbeats or uploads. */
  async checkDeadTime(): Promise<void> {
    if (!this.#connected || !this.idle || this.#loop) return;
    if (this.#now() - this.#lastActivityAt < this.#o.deadTimeMs) return;
    await this.#disconnect('dead-time');
  }

  /**
   * Graceful: no new upload starts, the one in flight may finish. Hard: the one in flight is
   * aborted too. Either way every snapshot not confirmed stays in the spool for the next start.
   */
  async stop({ graceful }: { graceful: boolean }): Promise<void> {
    this.#stopping = true;
    this.#waits.abort();
    if (!graceful) this.#operations.abort();
    await this.#loop;
    await this.#disconnect('stop');
  }

  #publishQueue(): void {
    this.#o.status.setQueue([...this.#pending.values()]);
  }
}
