/**
 * The agent's own Prometheus metrics (prom-client), kept in the master process from the events
 * the subtask sends: uploads, bytes and failures as they happen, and queue, oldest pending,
 * connection and retry state from the subtask's health (sent when it changes, at most once per
 * `intervalMs`). Counters are the master's: they keep growing across subtask restarts.
 * Nothing is served unless a port is given; a registry of the app's own can be used instead.
 */
import type { EventEmitter } from 'node:events';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { healthRemotePath, type HealthDocument } from '../health/document.js';
import type { UploadFailedEvent, UploadedEvent } from '../shared/ipc.js';
import { HEARTBEAT_SUFFIX } from '../shared/sidecar.js';
import type { SubtaskExitEvent } from '../master/events.js';
import { serveMetrics, type MetricsServer } from './serve.js';

export interface MetricsOptions {
  /** Serve `GET /metrics` on this port (0: any free port; see `url`). Without it nothing is served. */
  port?: number;
  /** Address to bind. @default '127.0.0.1' (this machine only; '0.0.0.0' or '::' for every interface) */
  host?: string;
  /**
   * Register the metrics in this prom-client registry (an app's own, served by the app) instead
   * of a private one. With a private registry, Node's process metrics are included too.
   */
  registry?: Registry;
}

const CONNECTION_STATES = ['disconnected', 'connecting', 'connected', 'waiting-to-retry'] as const;

export class AgentMetrics {
  readonly registry: Registry;
  readonly #options: MetricsOptions;
  readonly #ignored: Set<string>;
  #server: MetricsServer | null = null;
  #health: HealthDocument | null = null;
  /** Notifies counted by subtasks that have exited (the health counts per subtask run). */
  #notifiesBefore = 0;
  #lastRun: { startedAt: string; notifies: number } | null = null;
  readonly #m;

  constructor(master: EventEmitter, options: MetricsOptions, heartbeatName: string) {
    this.#options = options;
    this.#ignored = new Set([`${heartbeatName}${HEARTBEAT_SUFFIX}`, healthRemotePath(heartbeatName)]);
    this.registry = options.registry ?? new Registry();
    if (!options.registry) collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    const self = this;
    this.#m = {
      uploads: new Counter({ name: 'pushtask_uploads_total', help: 'Files (or appended deltas) delivered; heartbeats and status files not counted.', registers }),
      bytes: new Counter({ name: 'pushtask_uploaded_bytes_total', help: 'Bytes delivered.', registers }),
      failures: new Counter({ name: 'pushtask_upload_failures_total', help: 'Failed uploads and connection attempts, by error code.', labelNames: ['code'] as const, registers }),
      restarts: new Counter({ name: 'pushtask_subtask_restarts_total', help: 'Unexpected subtask exits the supervisor restarted.', registers }),
      // Gauges from the latest health, set at scrape time (ages need the scrape's now).
      queueFiles: new Gauge({
        name: 'pushtask_queue_files',
        help: 'Snapshots waiting or being uploaded.',
        registers,
        collect() {
          self.#collect();
        },
      }),
      queueBytes: new Gauge({ name: 'pushtask_queue_bytes', help: 'Bytes waiting or being uploaded.', registers }),
      oldest: new Gauge({ name: 'pushtask_oldest_pending_seconds', help: 'Age of the oldest waiting snapshot (0 when none waits).', registers }),
      connection: new Gauge({ name: 'pushtask_connection_state', help: 'The connection state: 1 for the current one.', labelNames: ['state'] as const, registers }),
      retryWaiting: new Gauge({ name: 'pushtask_retry_waiting', help: '1 while waiting to retry after a failure.', registers }),
      nextRetry: new Gauge({ name: 'pushtask_next_retry_timestamp_seconds', help: 'When the next retry is due (0 when none is).', registers }),
      failing: new Gauge({ name: 'pushtask_failing', help: '1 while uploads are failing (until every failing file got through).', registers }),
      lastUpload: new Gauge({ name: 'pushtask_last_upload_timestamp_seconds', help: 'When data was last delivered (0: never).', registers }),
      notifies: new Gauge({ name: 'pushtask_notifies_total', help: 'Notifies the subtask saw (sidecar touches), since the master started.', registers }),
      spoolFree: new Gauge({ name: 'pushtask_spool_free_bytes', help: "Free space on the spool's file system.", registers }),
      running: new Gauge({ name: 'pushtask_subtask_up', help: '1 while the subtask runs and has reported its health.', registers }),
    };
    master.on('uploaded', (event: UploadedEvent) => {
      if (this.#ignored.has(event.remotePath)) return;
      this.#m.uploads.inc();
      this.#m.bytes.inc(event.bytes);
    });
    master.on('upload-failed', (event: UploadFailedEvent) => this.#m.failures.inc({ code: event.error.code }));
    master.on('subtask-exit', (event: SubtaskExitEvent) => {
      if (event.restarting) this.#m.restarts.inc();
      this.#health = null;
    });
    master.on('health', (document: HealthDocument) => this.#onHealth(document));
  }

  get url(): string | null {
    return this.#server?.url ?? null;
  }

  /** Starts serving when a port was given; idempotent. */
  async listen(): Promise<void> {
    if (this.#server || this.#options.port === undefined) return;
    this.#server = await serveMetrics(this.registry, { port: this.#options.port, host: this.#options.host ?? '127.0.0.1' });
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    this.#health = null;
    await server?.close();
  }

  #onHealth(document: HealthDocument): void {
    // A new subtask run counts notifies from 0 again: carry the previous run's count.
    if (this.#lastRun && this.#lastRun.startedAt !== document.startedAt) this.#notifiesBefore += this.#lastRun.notifies;
    this.#lastRun = { startedAt: document.startedAt, notifies: document.sinceStart.notifies };
    this.#health = document;
  }

  #collect(): void {
    const h = this.#health;
    const m = this.#m;
    const at = (iso: string | null | undefined) => (iso ? Date.parse(iso) / 1000 : 0);
    m.running.set(h ? 1 : 0);
    m.notifies.set(this.#notifiesBefore + (this.#lastRun?.notifies ?? 0));
    if (!h) {
      for (const gauge of [m.queueFiles, m.queueBytes, m.oldest, m.retryWaiting, m.nextRetry, m.failing]) gauge.set(0);
      for (const state of CONNECTION_STATES) m.connection.set({ state }, state === 'disconnected' ? 1 : 0);
      return;
    }
    m.queueFiles.set(h.queue.files);
    m.queueBytes.set(h.queue.bytes);
    m.oldest.set(h.queue.oldestQueuedAt ? Math.max(0, (Date.now() - Date.parse(h.queue.oldestQueuedAt)) / 1000) : 0);
    for (const state of CONNECTION_STATES) m.connection.set({ state }, state === h.connection.state ? 1 : 0);
    m.retryWaiting.set(h.connection.state === 'waiting-to-retry' ? 1 : 0);
    m.nextRetry.set(at(h.connection.nextRetryAt));
    m.failing.set(h.failingSince ? 1 : 0);
    m.lastUpload.set(at(h.lastUploadAt));
    m.spoolFree.set(h.spoolDisk?.freeBytes ?? 0);
  }
}
