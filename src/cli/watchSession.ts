/**
 * One `pushtask watch` run: a TaskMaster for the config file, its output, and the signals.
 * SIGINT/SIGTERM stop it gracefully (a second one exits at once). SIGHUP reloads the config
 * file: an invalid file is reported and the agent keeps running as it was; a valid one replaces
 * the agent (graceful stop, start with the new config). Queued work is in the spool, which
 * survives the swap. SIGHUP never ends the process.
 */
import { loadConfigFile, type LoadedConfig } from '../config/load.js';
import type { ResolvedConfig } from '../config/resolve.js';
import type { PushtaskConfig } from '../config/schema.js';
import { TaskMaster } from '../master/TaskMaster.js';
import { errorMessage } from '../shared/errors.js';
import type { ProgressEvent } from '../shared/ipc.js';
import { reopenLogFiles } from '../shared/logFiles.js';
import { createLogger, type Logger, type LoggerOptions } from '../shared/logger.js';
import { collectSecrets } from '../shared/secrets.js';
import type { AgentStatus } from '../subtask/status.js';
import type { CliIO } from './command.js';
import { EXIT_OK } from './errors.js';
import { printEvents } from './eventLines.js';
import { describeTarget, formatBytes } from './format.js';
import { readStatus } from './statusFormat.js';
import { LiveDisplay, PlainDisplay, type WatchDisplay } from './watchDisplay.js';
import type { MetricsOptions } from '../metrics/agentMetrics.js';

export interface WatchSessionOptions {
  io: CliIO;
  /** A terminal: live progress area and event lines instead of console log lines. */
  live: boolean;
  /** `--metrics-port` / `--metrics-host`: serve the agent's Prometheus metrics. */
  metrics?: MetricsOptions;
}

export class WatchSession {
  readonly #io: CliIO;
  readonly #live: boolean;
  #loaded: LoadedConfig;
  #master: TaskMaster | null = null;
  #display: WatchDisplay | null = null;
  /** The watch's own lines also go to the master log file. */
  #fileLog: Logger | null = null;
  #unsubscribe: () => void = () => undefined;
  /** Start and reloads run one after another. */
  #work: Promise<void> = Promise.resolve();
  #reloadQueued = false;
  #stopping = false;
  #fail: (error: unknown) => void = () => undefined;
  readonly #loggers = new LoggerCache();

  constructor(loaded: LoadedConfig, options: WatchSessionOptions) {
    this.#loaded = loaded;
    this.#io = options.io;
    this.#live = options.live;
    this.#metrics = options.metrics;
  }

  readonly #metrics: MetricsOptions | undefined;

  async run(): Promise<number> {
    const fatal = new Promise<never>((_, reject) => {
      this.#fail = reject;
    });
    fatal.catch(() => undefined);
    // Listen before start() so a signal during start-up is not lost (it would kill us outright).
    const stopSignal = this.#listenForSignals();
    this.#display = this.#live ? this.#liveDisplay() : this.#plainDisplay();
    try {
      this.#work = this.#start(this.#loaded);
      await this.#work;
      this.#say(`pushtask watch: ${this.#summary(this.#loaded.resolved)}. Ctrl-C stops; SIGHUP reloads the config.`);
      const signal = await Promise.race([stopSignal, fatal]);
      this.#say(`${signal}: stopping gracefully (a second signal exits at once)`);
      await this.#work.catch(() => undefined); // a reload under way finishes first
      await this.#master?.stop({ forceKill: false });
      this.#say('stopped');
      return EXIT_OK;
    } finally {
      this.#stopping = true;
      this.#unsubscribe();
      this.#display.close();
      this.#fileLog?.flush();
    }
  }

  #listenForSignals(): Promise<NodeJS.Signals> {
    return new Promise((resolve) => {
      const onReload = () => this.#requestReload();
      const onStop = (signal: NodeJS.Signals) => {
        this.#stopping = true;
        process.off('SIGINT', onStop);
        process.off('SIGTERM', onStop);
        // A second signal means "now": the subtask sees the channel close and stops by itself.
        process.once('SIGINT', () => process.exit(130));
        process.once('SIGTERM', () => process.exit(143));
        resolve(signal);
      };
      process.on('SIGINT', onStop);
      process.on('SIGTERM', onStop);
      // Stays installed to the end: a late SIGHUP must not kill the process (its default action).
      process.on('SIGHUP', onReload);
      // Same for SIGUSR1 (logrotate's postrotate); the default would end the process.
      process.on('SIGUSR1', () => this.#reopenLogs());
    });
  }

  /** logrotate moved the log files away: this process and its subtask write to new ones. */
  #reopenLogs(): void {
    reopenLogFiles();
    const pid = this.#master?.subtaskPid;
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGUSR1'); // `systemctl kill -s USR1` reaches it anyway; `kill -USR1 <pid>` does not
      } catch {
        // Gone meanwhile: its successor opens the files afresh.
      }
    }
    this.#fileLog?.info('SIGUSR1: log files reopened');
  }

  /** Coalesces: SIGHUPs during a reload lead to one more reload after it. */
  #requestReload(): void {
    if (this.#stopping || this.#reloadQueued) return;
    this.#reloadQueued = true;
    this.#work = this.#work
      .catch(() => undefined)
      .then(() => {
        this.#reloadQueued = false;
        return this.#reload();
      })
      .catch((error: unknown) => this.#fail(error));
  }

  async #reload(): Promise<void> {
    if (this.#stopping) return;
    const file = this.#loaded.file;
    this.#say(`SIGHUP: reloading ${file}`);
    let next: LoadedConfig;
    try {
      next = await loadConfigFile(file);
    } catch (error) {
      this.#say(`SIGHUP: ${errorMessage(error)}\nKept running with the previous config; fix the file and send SIGHUP again.`, 'error');
      return;
    }
    if (this.#stopping) return;
    const previous = this.#loaded;
    this.#say('SIGHUP: the new config is valid; restarting the agent with it (graceful stop first; queued files stay in the spool)');
    await this.#master?.stop({ forceKill: false });
    this.#detach();
    if (this.#stopping) return; // SIGTERM meanwhile: the stopped agent stays stopped
    this.#noteSpoolMove(previous.resolved, next.resolved);
    try {
      await this.#start(next);
    } catch (error) {
      this.#say(`SIGHUP: the agent did not start with the new config: ${errorMessage(error)}\nGoing back to the previous config.`, 'error');
      await this.#start(previous); // failing too ends the watch with exit code 1 (a service manager restarts it)
      this.#say(`running with the previous config again: ${this.#summary(previous.resolved)}`);
      return;
    }
    this.#say(`reloaded: ${this.#summary(next.resolved)}`);
  }

  async #start(loaded: LoadedConfig): Promise<void> {
    this.#fileLog?.flush();
    const config = this.#configFor(loaded);
    const { resolved } = loaded;
    const secrets = collectSecrets(resolved);
    const rotation = resolved.log.rotation;
    this.#fileLog = this.#loggers.get({ name: 'cli', level: resolved.log.level, file: resolved.log.masterFile, rotation, console: false, secrets });
    // The master's own logger, made here so that reloads reuse it (and its open log file).
    const logger = this.#loggers.get({
      name: 'master',
      level: resolved.log.level,
      file: resolved.log.masterFile,
      rotation,
      console: this.#live ? false : resolved.log.console,
      secrets,
    });
    const master = new TaskMaster(config, { cwd: loaded.cwd, logger, ...(this.#metrics ? { metrics: this.#metrics } : {}) });
    this.#attach(master, loaded.cwd);
    try {
      await master.start();
    } catch (error) {
      this.#detach();
      throw error;
    }
    this.#master = master;
    this.#loaded = loaded;
    if (master.metrics?.url) this.#say(`metrics on ${master.metrics.url}`);
  }

  /** In a terminal the console shows event lines and the live area; log lines go to the files only. */
  #configFor(loaded: LoadedConfig): PushtaskConfig {
    if (!this.#live) return loaded.config;
    return { ...loaded.config, log: { ...loaded.config.log, console: false } };
  }

  #attach(master: TaskMaster, base: string): void {
    const display = this.#display!;
    const onProgress = (event: ProgressEvent) => display.progress(event);
    const onEnded = (event: { file: string }) => display.done(event.file);
    const onGone = () => display.clearTransfers();
    master.on('progress', onProgress);
    master.on('uploaded', onEnded);
    master.on('upload-failed', onEnded);
    master.on('disconnected', onGone);
    master.on('subtask-exit', onGone);
    const unprint = this.#live ? printEvents(master, (line) => display.line(line), base) : () => undefined;
    this.#unsubscribe = () => {
      master.off('progress', onProgress);
      master.off('uploaded', onEnded);
      master.off('upload-failed', onEnded);
      master.off('disconnected', onGone);
      master.off('subtask-exit', onGone);
      unprint();
      display.clearTransfers();
    };
  }

  #detach(): void {
    this.#unsubscribe();
    this.#unsubscribe = () => undefined;
  }

  /** A new spool starts empty; what waits in the old one is named, not silently left behind. */
  #noteSpoolMove(before: ResolvedConfig, after: ResolvedConfig): void {
    if (before.spoolDir === after.spoolDir) return;
    const status = statusOf(before.spoolDir);
    const left = status && status.queue.length > 0 ? `${status.queue.length} file(s), ${formatBytes(status.queue.bytes)}` : 'nothing';
    this.#say(
      `SIGHUP: the spool moves from ${before.spoolDir} to ${after.spoolDir}. Left queued in the old spool: ${left}. ` +
        'Watched files that changed since their last delivery are sent again from the new spool; ' +
        'to deliver exactly what waits in the old one, run an agent with the old config once.',
      'warn',
    );
  }

  #summary(config: ResolvedConfig): string {
    const files = config.watch.filter((entry) => entry.kind === 'file').length;
    return `${files} file(s) and ${config.watch.length - files} drop folder(s) → ${describeTarget(config)}; spool ${config.spoolDir}`;
  }

  #say(text: string, level: 'info' | 'warn' | 'error' = 'info'): void {
    this.#display?.line(text);
    this.#fileLog?.[level](`pushtask watch: ${text}`);
  }

  #liveDisplay(): WatchDisplay {
    const stdout = this.#io.stdout;
    return new LiveDisplay({
      write: this.#io.out,
      columns: () => stdout.columns || 80, // 0 under a pseudo-terminal without a size
      readStatus: () => statusOf(this.#loaded.resolved.spoolDir),
      base: () => this.#loaded.cwd,
    });
  }

  #plainDisplay(): WatchDisplay {
    return new PlainDisplay({
      write: this.#io.out,
      readStatus: () => statusOf(this.#loaded.resolved.spoolDir),
      base: () => this.#loaded.cwd,
    });
  }
}

/**
 * Loggers by what makes them differ, so that a reload with the same log settings reuses the open
 * log file instead of opening it once more (a service may be reloaded many times in months).
 */
class LoggerCache {
  readonly #loggers = new Map<string, Logger>();

  get(options: LoggerOptions): Logger {
    const key = JSON.stringify({ ...options, level: undefined });
    let logger = this.#loggers.get(key);
    if (!logger) {
      logger = createLogger(options);
      this.#loggers.set(key, logger);
    }
    logger.level = options.level;
    return logger;
  }
}

function statusOf(spoolDir: string): AgentStatus | null {
  try {
    const read = readStatus(spoolDir);
    return read.kind === 'found' ? read.status : null;
  } catch {
    return null;
  }
}
