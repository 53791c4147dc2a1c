/**
 * TaskMaster: what an application embeds. It touches sidecars on notify (the only thing on the
 * hot path), applies burst mode, prepares the spool at start (archive, residuals) and supervises
 * the subtask process through its Supervisor (supervisor.ts), which restarts it with backoff.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, resolveConfig, type ResolvedConfig, type ResolvedWatchFile } from '../config/resolve.js';
import type { LogLevel, PushtaskConfig } from '../config/schema.js';
import { PushtaskError, errorMessage } from '../shared/errors.js';
import type { SubtaskToMaster } from '../shared/ipc.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { collectSecrets } from '../shared/secrets.js';
import { sidecarOf } from '../shared/sidecar.js';
import { Ledger } from '../spool/ledger.js';
import { lockSpool, type SpoolLock } from '../spool/lock.js';
import { Spool } from '../spool/spool.js';
import { LEDGER_FILE } from '../subtask/agent.js';
import { heartbeatFile } from '../subtask/heartbeat.js';
import { archiveDeliveredFiles } from './archive.js';
import { BurstDetector, type BurstDecision } from './burst.js';
import type { NotifyEvent, TaskMasterEvents } from './events.js';
import { SidecarToucher } from './notifier.js';
import { precopyResiduals } from './residuals.js';
import { SubtaskProcess } from './subtaskProcess.js';
import { Supervisor, startCancelledError, type SupervisorExit } from './supervisor.js';
import type { AgentMetrics, MetricsOptions } from '../metrics/agentMetrics.js';
import { prepareWatchedPaths } from './watchedPaths.js';

export interface TaskMasterOptions {
  /** Base for relative paths in the config and in notify(). @default process.cwd() */
  cwd?: string;
  /** Use this logger instead of the one the config describes. */
  logger?: Logger;
  /** How long a (re)started subtask may take to report ready before it is killed (and restarted). @default 20000 */
  subtaskReadyTimeoutMs?: number;
  /** Prometheus metrics of the agent (src/metrics): served on a port, or put in the app's registry. */
  metrics?: MetricsOptions;
}

export interface StartOptions {
  /** Move files older than `archive.afterDays` into the archive first. @default true */
  archiveExpired?: boolean;
  /**
   * Copy undelivered residual data (data-folder files with the watched files' extensions) into the
   * spool so it is uploaded first. Drop-folder files are queued by the subtask's first scan either way.
   * @default true
   */
  uploadResiduals?: boolean;
}

export interface StopOptions {
  /** Kill the subtask at once (default), or let it finish the upload in flight (bounded). @default true */
  forceKill?: boolean;
}

type State = 'idle' | 'starting' | 'running' | 'stopping';

export class TaskMaster extends EventEmitter<TaskMasterEvents> {
  readonly config: ResolvedConfig;
  readonly #cwd: string;
  readonly #logger: Logger;
  readonly #files: ResolvedWatchFile[];
  /** Watched file → its index, by absolute path and by every spelling notify() was called with. */
  readonly #fileIndex = new Map<string, number>();
  /** Sidecar path per watch index, computed once (notify is a hot path). */
  readonly #sidecars = new Map<number, string>();
  readonly #bursts = new Map<number, BurstDetector>();
  readonly #toucher = new SidecarToucher();
  readonly #readyTimeoutMs: number | undefined;
  #state: State = 'idle';
  /** One per start(): spawns, restarts and stops the subtask (supervisor.ts). */
  #supervisor: Supervisor<SubtaskProcess> | null = null;
  #lock: SpoolLock | null = null;
  #flushTimer: NodeJS.Timeout | null = null;
  #flushDueAt = Infinity;
  /** The start() in progress, and how stop() cancels it. */
  #starting: { done: Promise<void>; abort: AbortController } | null = null;
  #stopping: Promise<void> | null = null;
  #lastStartOptions: StartOptions = {};

  constructor(config: PushtaskConfig, options: TaskMasterOptions = {}) {
    super();
    this.#cwd = options.cwd ?? process.cwd();
    this.#readyTimeoutMs = options.subtaskReadyTimeoutMs;
    this.config = resolveConfig(config, { cwd: this.#cwd });
    this.#logger =
      options.logger ??
      createLogger({
        name: 'master',
        level: this.config.log.level,
        file: this.config.log.masterFile,
        rotation: this.config.log.rotation,
        console: this.config.log.console,
        secrets: collectSecrets(this.config),
      });
    for (const entry of this.config.watch) {
      if (entry.kind !== 'file') continue;
      this.#fileIndex.set(entry.path, entry.index);
      this.#sidecars.set(entry.index, sidecarOf(entry.path));
      if (entry.burst) this.#bursts.set(entry.index, new BurstDetector(entry.burst));
    }
    this.#files = this.config.watch.filter((entry): entry is ResolvedWatchFile => entry.kind === 'file');
    this.#metricsOptions = options.metrics ?? null;
  }

  readonly #metricsOptions: MetricsOptions | null;
  #metrics: AgentMetrics | null = null;

  /**
   * The agent's Prometheus metrics (`metrics.url` while served), from the first start() on, when
   * the `metrics` option was given. Loaded on demand: prom-client costs an app without metrics nothing.
   */
  get metrics(): AgentMetrics | null {
    return this.#metrics;
  }

  /** The subtask's pid while it runs. */
  get subtaskPid(): number | undefined {
    const subtask = this.#supervisor?.state === 'running' ? this.#supervisor.child : null;
    return subtask?.running ? subtask.pid : undefined;
  }

  get running(): boolean {
    return this.#state === 'running';
  }

  /**
   * Locks the spool, archives, pre-copies residuals and starts the subtask; resolves once it is
   * ready. A stop() meanwhile cancels it: start() then fails with code ABORTED, nothing is left running.
   */
  start(options: StartOptions = {}): Promise<void> {
    if (this.#state !== 'idle') return Promise.reject(new Error(`TaskMaster.start(): already ${this.#state}`));
    this.#state = 'starting';
    this.#stopping = null;
    this.#lastStartOptions = options;
    const abort = new AbortController();
    const done = this.#start(options, abort.signal).finally(() => {
      this.#starting = null;
    });
    this.#starting = { done, abort };
    return done;
  }

  async #start(options: StartOptions, signal: AbortSignal): Promise<void> {
    const cancelled = () => {
      if (signal.aborted) throw startCancelledError();
    };
    try {
      this.#checkWatchedPaths();
      this.#lock = await lockSpool(this.config.spoolDir, (error) =>
        this.#logger.error({ err: error }, `Lost the lock on spool ${this.config.spoolDir}: ${error.message}`),
      );
      cancelled();
      if (this.#metricsOptions && !this.#metrics) {
        const { AgentMetrics } = await import('../metrics/agentMetrics.js');
        this.#metrics = new AgentMetrics(this, this.#metricsOptions, this.config.heartbeat.name);
      }
      await this.#metrics?.listen();
      this.#removeStaleSidecars();
      if (options.archiveExpired ?? true) await this.#archive(signal);
      cancelled();
      if (options.uploadResiduals ?? true) await this.#precopyResiduals(signal);
      cancelled();
      this.#supervisor = this.#newSupervisor();
      await this.#supervisor.start();
      this.#state = 'running';
      this.#logger.info(`Started: subtask pid ${this.subtaskPid}, spool ${this.config.spoolDir}`);
    } catch (error) {
      // Cancelled by stop(): stop() tears down once this has unwound.
      if (!signal.aborted) {
        await this.#teardown();
        this.#state = 'idle';
      }
      throw error;
    }
  }

  #newSupervisor(): Supervisor<SubtaskProcess> {
    return new Supervisor({
      spawn: () => new SubtaskProcess(this.config, (message) => this.#onSubtaskMessage(message)),
      ...(this.#readyTimeoutMs !== undefined ? { readyTimeoutMs: this.#readyTimeoutMs } : {}),
      onReady: (subtask, restart) => {
        this.#lock?.noteSubtask(subtask.pid ?? null);
        if (restart) this.#logger.info(`Restarted the subtask: pid ${subtask.pid}`);
        this.emit('subtask-start', { pid: subtask.pid ?? 0, restart });
      },
      onExit: (exit) => this.#onSubtaskExit(exit),
    });
  }

  /** Before the spool lock: its default folder is inside the first watched folder, and would create it. */
  #checkWatchedPaths(): void {
    const { problems, toCreate, warnings } = prepareWatchedPaths(this.config);
    if (problems.length) throw new ConfigError(problems);
    for (const folder of toCreate) this.#logger.info(`Created ${folder} (create: true)`);
    for (const warning of warnings) this.#logger.warn(warning);
  }

  #removeStaleSidecars(): void {
    const stale = [
      ...this.#sidecars.values(),
      heartbeatFile(this.config.dataDir, this.config.heartbeat.name),
    ];
    for (const file of stale) fs.rmSync(file, { force: true });
  }

  async #archive(signal: AbortSignal): Promise<void> {
    const ledger = new Ledger(path.join(this.config.spoolDir, LEDGER_FILE)).load();
    const { moved, undelivered } = await archiveDeliveredFiles(this.config, ledger, signal);
    for (const { from, to } of moved) this.#logger.info(`Archived ${from} → ${to}`);
    if (undelivered.length) {
      // One line, not one per file: a data folder may hold many files pushtask never delivers.
      this.#logger.info(`Not archiving ${undelivered.length} expired file(s) not delivered as they are now (only delivered data is archived), e.g. ${undelivered[0]}`);
    }
  }

  async #precopyResiduals(signal: AbortSignal): Promise<void> {
    const spool = new Spool(this.config.spoolDir);
    const ledger = new Ledger(path.join(this.config.spoolDir, LEDGER_FILE)).load();
    const queued = await precopyResiduals(this.config, spool, ledger, (source, error) =>
      this.#logger.warn(
        `Could not pre-copy the residual ${source} into the spool (${errorMessage(error)}); starting anyway: ` +
          'watched and drop-folder files are still found by the subtask, other residuals at the next start',
      ),
      signal,
    );
    if (queued.length) this.#logger.info(`Queued ${queued.length} residual file(s) for upload first`);
  }

  #onSubtaskMessage(message: SubtaskToMaster): void {
    if (message.type !== 'event') return;
    // The switch keeps each payload paired with its event name for the type checker.
    switch (message.name) {
      case 'uploaded':
        this.emit('uploaded', message.payload);
        break;
      case 'upload-failed':
        this.emit('upload-failed', message.payload);
        break;
      case 'connected':
        this.emit('connected', message.payload);
        break;
      case 'disconnected':
        this.emit('disconnected', message.payload);
        break;
      case 'heartbeat':
        this.emit('heartbeat', message.payload);
        break;
      case 'progress':
        this.emit('progress', message.payload);
        break;
      case 'health':
        this.emit('health', message.payload);
        break;
    }
  }

  #onSubtaskExit(exit: SupervisorExit): void {
    const why = exit.reason ?? `exited unexpectedly (code ${exit.code}, signal ${exit.signal})`;
    this.#logger.error(`The subtask (pid ${exit.pid}) ${why}; restarting it in ${exit.restartInMs / 1000} s. Queued files wait in the spool.`);
    this.emit('subtask-exit', { code: exit.code, signal: exit.signal, restarting: true, restartInMs: exit.restartInMs, ...(exit.pid !== undefined ? { pid: exit.pid } : {}) });
  }

  // ---- notify: the hot path -------------------------------------------------------------

  /** Tells the subtask that `file` (absolute, or relative to the working directory) has new data. */
  notify(file: string): void {
    let index = this.#fileIndex.get(file);
    if (index === undefined) {
      index = this.#fileIndex.get(path.resolve(this.#cwd, file));
      if (index !== undefined) this.#fileIndex.set(file, index);
    }
    if (index === undefined) {
      throw new PushtaskError(
        'UNKNOWN_FILE',
        `notify(${JSON.stringify(file)}): not a watched file. Watched files: ${this.#files.map((entry) => entry.path).join(', ') || '(none)'}`,
      );
    }
    this.#notifyIndex(index, false);
  }

  /** Same as notify() for the watch entry at `index` (the order of `watch` in the config). */
  notifyIndex(index: number): void {
    const entry = this.config.watch[index];
    if (!entry || entry.kind !== 'file') {
      throw new PushtaskError(
        'UNKNOWN_FILE',
        `notifyIndex(${index}): no watched file at that index (valid: ${this.#files.map((file) => file.index).join(', ') || 'none'})`,
      );
    }
    this.#notifyIndex(index, false);
  }

  /** Notifies every watched file at once, bypassing burst mode (as pysubtask does). */
  notifyAll(): void {
    for (const entry of this.#files) this.#notifyIndex(entry.index, true);
  }

  #notifyIndex(index: number, bypassBurst: boolean): void {
    const file = this.config.watch[index]!.path;
    const burst = this.#bursts.get(index);
    const now = Date.now();
    let decision: BurstDecision | null = null;
    if (burst && !bypassBurst) {
      decision = burst.onNotify(now);
    } else {
      burst?.clearPending();
    }
    if (!decision || decision.notify) this.#touch(index, now);
    else if (this.config.autoFlush && decision.pendingDueAt !== null) this.#scheduleFlush(decision.pendingDueAt);
    if (this.listenerCount('notify') > 0) {
      this.emit('notify', {
        file,
        index,
        passed: !decision || decision.notify,
        reason: decision ? decision.reason : 'direct',
        pendingDueAt: decision?.pendingDueAt ?? null,
      } satisfies NotifyEvent);
    }
  }

  #touch(index: number, now: number): void {
    const sidecar = this.#sidecars.get(index)!;
    try {
      this.#toucher.touch(sidecar, now);
    } catch (error) {
      // Never throw into the host's data loop: report and let the next notify try again.
      this.#logger.warn(`Could not touch ${sidecar}: ${errorMessage(error)}; the data is sent with the next notify`);
      this.#emitError(error);
    }
  }

  /** The files whose new data burst mode holds back, with when it will be flushed (ms since epoch). */
  get heldBack(): { file: string; dueAt: number }[] {
    return [...this.#bursts]
      .filter(([, burst]) => burst.pendingDueAt !== null)
      .map(([index, burst]) => ({ file: this.config.watch[index]!.path, dueAt: burst.pendingDueAt! }));
  }

  /** Flushes data held back by burst mode whose burst has expired; returns how many files. */
  checkPendingNotifications(): number {
    const now = Date.now();
    let flushed = 0;
    for (const [index, burst] of this.#bursts) {
      if (!burst.takeDuePending(now)) continue;
      const file = this.config.watch[index]!.path;
      this.#touch(index, now);
      flushed += 1;
      if (this.listenerCount('notify') > 0) this.emit('notify', { file, index, passed: true, reason: 'flush', pendingDueAt: null });
    }
    return flushed;
  }

  /** Passes on everything burst mode still holds back, due or not (at stop: nothing is stranded). */
  #releaseHeldData(): void {
    const now = Date.now();
    for (const [index, burst] of this.#bursts) {
      if (burst.pendingDueAt === null) continue;
      burst.clearPending();
      this.#touch(index, now);
    }
  }

  #scheduleFlush(dueAt: number): void {
    if (this.#flushTimer && this.#flushDueAt <= dueAt) return;
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    this.#flushDueAt = dueAt;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = null;
      this.#flushDueAt = Infinity;
      this.checkPendingNotifications();
      const next = Math.min(...[...this.#bursts.values()].map((burst) => burst.pendingDueAt ?? Infinity));
      if (next !== Infinity) this.#scheduleFlush(next);
    }, Math.max(0, dueAt - Date.now()));
    // Held data never keeps the host process alive; stop() and the next start's catch-up cover it.
    this.#flushTimer.unref();
  }

  #emitError(error: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', error instanceof Error ? error : new Error(String(error)));
  }

  // ---- control ------------------------------------------------------------------------------

  /** Changes the log level of master and subtask at once, without a restart. */
  setLogLevel(level: LogLevel): void {
    this.#logger.level = level;
    this.#supervisor?.child?.send({ type: 'log-level', level });
  }

  /**
   * Stops the subtask: at once by default, or gracefully (`forceKill: false`): data held back by
   * burst mode is passed on and the queue is delivered while uploads succeed, within
   * `gracefulTimeoutMs`. Nothing is lost either way: the spool survives for the next start.
   * Calling it again returns the same promise.
   */
  stop(options: StopOptions = {}): Promise<void> {
    if (this.#stopping) return this.#stopping;
    if (this.#state === 'idle') return Promise.resolve();
    this.#state = 'stopping';
    const starting = this.#starting;
    starting?.abort.abort();
    this.#releaseHeldData();
    const force = options.forceKill ?? true;
    this.#stopping = (async () => {
      // During start() the supervisor may not exist yet: the abort ends start() before it spawns.
      await this.#supervisor?.stop(force ? {} : { gracefulTimeoutMs: this.config.gracefulTimeoutMs });
      await starting?.done.catch(() => undefined);
      fs.rmSync(heartbeatFile(this.config.dataDir, this.config.heartbeat.name), { force: true });
      await this.#teardown();
      this.#state = 'idle';
      this.#logger.info(starting ? 'Stopped while starting (start cancelled)' : force ? 'Stopped (subtask killed)' : 'Stopped gracefully');
    })();
    return this.#stopping;
  }

  /** Full stop and start of the subtask (archival and residuals as at the last start). */
  async reset(): Promise<void> {
    this.#logger.info('Reset: stopping and starting the subtask');
    await this.stop();
    await this.start(this.#lastStartOptions);
  }

  async #teardown(): Promise<void> {
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    this.#flushDueAt = Infinity;
    await this.#supervisor?.stop();
    this.#supervisor = null;
    await this.#metrics?.close();
    if (this.#lock) {
      await this.#lock.release().catch(() => undefined);
      this.#lock = null;
    }
    this.#logger.flush();
  }
}
