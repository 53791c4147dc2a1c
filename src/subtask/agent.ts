/**
 * The subtask's agent: turns notifies, drop-folder files and heartbeats into spool snapshots and
 * feeds them to the uploader. Startup order matters for "nothing is lost": sidecar baselines are
 * read first, then every source that changed since its last delivery is queued, so a write either
 * predates the catch-up scan or is followed by a touch the baseline has not seen.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ResolvedConfig, ResolvedWatchDir, ResolvedWatchFile } from '../config/resolve.js';
import { errorMessage, toErrorInfo, type ErrorInfo } from '../shared/errors.js';
import { Slots } from '../shared/limit.js';
import { SnapshotLookahead } from './snapshotLookahead.js';
import type { Logger } from '../shared/logger.js';
import { retryDelay } from '../shared/retryPolicy.js';
import { scrubSecrets, collectSecrets } from '../shared/secrets.js';
import { HEARTBEAT_SUFFIX, sidecarOf } from '../shared/sidecar.js';
import { Ledger } from '../spool/ledger.js';
import { EMPTY_BASE, Spool, type AppendBase, type SnapshotKind } from '../spool/spool.js';
import { loadTransport, type TransportCapabilities, type TransportFactory } from '../transports/index.js';
import { newAgentTag } from '../transports/tempNames.js';
import { StrayTemps } from '../transports/strayTemps.js';
import { bandwidthLimiterFor, lowestRate, parseBandwidthLimit } from '../shared/bandwidth.js';
import { DropFolderWatcher, dropFolderExclusions } from './dropFolders.js';
import { HeartbeatSchedule, heartbeatFile, heartbeatGraceSec, writeHeartbeat } from './heartbeat.js';
import { FileSidecarWatcher, SidecarClock, sidecarMtime } from './sidecars.js';
import { StatusReporter } from './status.js';
import { healthRemotePath } from '../health/document.js';
import { HealthTracker } from '../health/tracker.js';
import { packageVersion } from '../shared/version.js';
import { Uploader, type Emit } from './uploader.js';

export const LEDGER_FILE = 'state.json';

/**
 * Snapshots taken at once. A backlog (1,000 files dropped together) used to start a copy each at
 * the same moment: the first finished only when nearly all had, so uploads began seconds late.
 */
const SNAPSHOT_CONCURRENCY = 8;

/**
 * A snapshot's bytes are fsynced once it has waited this long for its upload (spool.ts): most are
 * delivered first and never pay for it. Shorter than the time a snapshot's meta (never fsynced)
 * takes to reach the disk by itself (ext4: 5 s journal commits, 30 s data write-back), so after a
 * power cut the catch-up relies on the source for no snapshot it did not rely on before.
 */
const DEFER_SYNC_MS = 5000;

/**
 * Drop-folder snapshots waiting in the uploader's queue, per lane (at least MIN_LOOKAHEAD): enough
 * that a lane never waits for a copy, few enough that emptied spool files are reused.
 */
const LOOKAHEAD_PER_LANE = 2;
const MIN_LOOKAHEAD = 4;

export class Agent {
  readonly #config: ResolvedConfig;
  readonly #logger: Logger;
  readonly #emit: Emit;
  readonly #spool: Spool;
  readonly #ledger: Ledger;
  readonly #status: StatusReporter;
  readonly #health: HealthTracker;
  /** The health last sent to the master (its JSON), to send only changes. */
  #healthSent = '';
  readonly #uploader: Uploader;
  readonly #clock = new SidecarClock();
  readonly #files: ResolvedWatchFile[];
  readonly #sidecars: FileSidecarWatcher;
  readonly #dropFolders: DropFolderWatcher[];
  readonly #heartbeat: HeartbeatSchedule;
  readonly #secrets: string[];
  /** Per source: a snapshot is being taken; `true` when another was asked for meanwhile. */
  readonly #snapshotting = new Map<string, boolean>();
  readonly #snapshotLoops = new Set<Promise<void>>();
  /** Source states already snapshotted in the spool at start (residuals, leftovers). */
  readonly #queuedStates = new Set<string>();
  readonly #snapshotRetries = new Set<NodeJS.Timeout>();
  /** Snapshot failures in a row per source (a full disk, a read error). */
  readonly #snapshotFailures = new Map<string, number>();
  readonly #snapshotSlots = new Slots(SNAPSHOT_CONCURRENCY);
  readonly #lookahead: SnapshotLookahead;
  #tickTimer: NodeJS.Timeout | null = null;
  #stopped = false;
  /** Shared with the transports: remote temporary files to remove over the next connection. */
  readonly #strays: StrayTemps;
  readonly #capabilities: TransportCapabilities;

  /** Loads the configured transport's module, then builds the agent. */
  static async create(config: ResolvedConfig, logger: Logger, emit: Emit): Promise<Agent> {
    const strays = new StrayTemps();
    // The local transport takes nothing from it: its copies never cross a link pushtask could meter (README, decisions).
    const bandwidth = bandwidthLimiterFor(config.bandwidthLimit);
    const agentTag = readAgentTag(config.spoolDir);
    const makeTransport = await loadTransport(config.transport, { logger, stateDir: config.spoolDir, strays, bandwidth, link: config.link, agentTag });
    return new Agent(config, logger, emit, makeTransport, strays);
  }

  private constructor(
    config: ResolvedConfig,
    logger: Logger,
    emit: Emit,
    makeTransport: TransportFactory,
    strays: StrayTemps,
  ) {
    this.#strays = strays;
    this.#capabilities = makeTransport.capabilities;
    this.#config = config;
    this.#logger = logger;
    this.#emit = emit;
    this.#secrets = collectSecrets(config);
    this.#spool = new Spool(config.spoolDir, { deferSyncMs: DEFER_SYNC_MS });
    this.#ledger = new Ledger(path.join(config.spoolDir, LEDGER_FILE));
    this.#status = new StatusReporter(config.spoolDir);
    const { name, intervalSec } = config.heartbeat;
    this.#health = new HealthTracker({
      spoolDir: config.spoolDir,
      name,
      heartbeatSec: intervalSec > 0 ? heartbeatGraceSec(intervalSec) : 0,
      version: packageVersion(),
      agent: () => this.#status.status,
      backlog: () => this.#uploader.backlog(),
      ignoredRemotePaths: new Set([`${name}${HEARTBEAT_SUFFIX}`, healthRemotePath(name)]),
    });
    // The health status counts what the master is told, from the same events.
    const tracked: Emit = (event, payload) => {
      this.#health.observe(event, payload);
      emit(event, payload);
    };
    const transfers = Math.min(makeTransport.capabilities.maxLanes, 'transfers' in config.transport ? config.transport.transfers : 1);
    this.#lookahead = new SnapshotLookahead(Math.max(MIN_LOOKAHEAD, LOOKAHEAD_PER_LANE * transfers), () => this.#uploader.queued);
    this.#uploader = new Uploader({
      createTransport: makeTransport,
      transfers,
      spool: this.#spool,
      ledger: this.#ledger,
      status: this.#status,
      retry: config.retry,
      operationTimeoutMs: config.operationTimeoutMs,
      ...slowestShare(config, transfers),
      deadTimeMs: config.deadTimeMs,
      logger,
      emit: tracked,
      describeError: (error) => this.describeError(error),
      requestSnapshot: (snapshot) =>
        this.#queueSnapshot({ kind: snapshot.kind, source: snapshot.source, remotePath: snapshot.remotePath, append: true }),
      onDelivered: (snapshot) => {
        if (snapshot.kind === 'drop') this.#dropFolderOf(snapshot.source)?.delivered(snapshot.source);
      },
      waiting: () => this.#lookahead.waiting(),
      onQueueChanged: () => this.#lookahead.wake(),
    });
    this.#status.setTransport(this.#uploader.description);
    this.#files = config.watch.filter((entry): entry is ResolvedWatchFile => entry.kind === 'file');
    this.#sidecars = new FileSidecarWatcher(
      this.#files.map((entry) => entry.path),
      this.#clock,
      (file) => this.#onNotified(file),
      logger,
    );
    this.#dropFolders = config.watch
      .filter((entry): entry is ResolvedWatchDir => entry.kind === 'dir')
      .map(
        (entry) =>
          new DropFolderWatcher({
            entry,
            excludedDirs: dropFolderExclusions(config, entry),
            ledger: this.#ledger,
            isQueued: (file, size, mtimeMs) => this.#queuedStates.has(stateKey(file, size, mtimeMs)),
            clock: this.#clock,
            logger,
            onReady: (file, remotePath, size) => {
              this.#uploader.warmUp();
              this.#queueSnapshot({ kind: 'drop', source: file, remotePath, append: this.#appends(entry), size });
            },
            snapshotsSettled: () => this.#snapshotsSettled(),
          }),
      );
    this.#heartbeat = new HeartbeatSchedule(config.heartbeat.intervalSec, Date.now());
  }

  /** The drop folder a file belongs to (the innermost, should one hold another). */
  #dropFolderOf(file: string): DropFolderWatcher | undefined {
    let found: DropFolderWatcher | undefined;
    for (const folder of this.#dropFolders) {
      if (file.startsWith(folder.dir + path.sep) && (!found || folder.dir.length > found.dir.length)) found = folder;
    }
    return found;
  }

  /** Append mode where the transport can append; the others (Dropbox) get whole files (README). */
  #appends(entry: ResolvedWatchFile | ResolvedWatchDir): boolean {
    return entry.mode === 'append' && this.#capabilities.append;
  }

  #watchedFile(source: string): SnapshotTarget {
    const entry = this.#files.find((file) => file.path === source);
    return { kind: 'data', source, remotePath: path.basename(source), append: entry !== undefined && this.#appends(entry) };
  }

  describeError(error: unknown): ErrorInfo {
    const info = toErrorInfo(error);
    return { code: info.code, message: scrubSecrets(info.message, this.#secrets) };
  }

  async start(): Promise<void> {
    await this.#spool.ensureDir();
    this.#ledger.load();
    await this.#health.load();
    const leftovers = await this.#spool.recover();
    // Temporary files of uploads this agent was in the middle of when it died: the first
    // connection removes them.
    for (const remoteTemp of this.#spool.takeRemoteTempsLeft()) this.#strays.note(remoteTemp);
    if (leftovers.length) this.#logger.info(`Uploading ${leftovers.length} snapshot(s) left in the spool first`);
    for (const snapshot of leftovers) {
      this.#queuedStates.add(stateKey(snapshot.source, snapshot.size, snapshot.mtimeMs));
      this.#uploader.enqueue(snapshot);
    }

    for (const entry of this.#files) {
      const sidecar = sidecarOf(entry.path);
      const record = this.#ledger.get(entry.path);
      const mtime = sidecarMtime(sidecar);
      // A sidecar touched after the last delivered snapshot is a notify still to serve.
      if (mtime !== null) this.#clock.baseline(sidecar, record ? record.snapshotAt : mtime);
    }
    if (this.#config.fsEvents) this.#sidecars.start();
    this.#catchUp();
    this.#sidecars.poll();
    for (const folder of this.#dropFolders) folder.start();
    await this.#tick({ rescan: false }); // the sidecars and drop folders were just looked at
    this.#tickTimer = setInterval(() => void this.#tick(), this.#config.intervalMs);
    await this.#status.flush(); // `pushtask status` works from the first moment
    this.#logger.info(
      `Subtask started: ${this.#files.length} file(s), ${this.#dropFolders.length} drop folder(s), polling every ${this.#config.intervalMs} ms, spool ${this.#config.spoolDir}`,
    );
  }

  /** Queues every watched file that differs from what was last delivered (changed while we were down). */
  #catchUp(): void {
    for (const entry of this.#files) {
      let stats: fs.Stats | undefined;
      try {
        stats = fs.statSync(entry.path, { throwIfNoEntry: false });
      } catch (error) {
        // A symlink loop or a path through a file: one unreadable file must not keep the agent down.
        this.#logger.error(`Cannot read ${entry.path} (${errorMessage(error)}); it is uploaded when it can be read and is notified`);
        continue;
      }
      if (!stats?.isFile() || this.#ledger.isDelivered(entry.path, stats.size, stats.mtimeMs)) continue;
      if (!this.#queuedStates.has(stateKey(entry.path, stats.size, stats.mtimeMs))) {
        this.#logger.info(`${entry.path} changed since its last delivery; uploading it`);
        this.#queueSnapshot(this.#watchedFile(entry.path));
      }
    }
  }

  async #tick({ rescan = true } = {}): Promise<void> {
    if (this.#stopped) return;
    try {
      if (rescan) {
        this.#sidecars.poll();
        for (const folder of this.#dropFolders) folder.rescan();
      }
      await this.#beatIfDue();
      await this.#publishHealth();
      await this.#uploader.checkDeadTime();
      this.#lookahead.wake(); // never needed while every queue change calls it; cheap insurance
    } catch (error) {
      this.#logger.error({ err: error }, `Periodic check failed (${errorMessage(error)}); trying again next interval`);
    }
  }

  async #beatIfDue(): Promise<void> {
    const { intervalSec, name } = this.#config.heartbeat;
    if (!this.#heartbeat.take(Date.now())) return;
    const file = heartbeatFile(this.#config.dataDir, name);
    await writeHeartbeat(file, intervalSec);
    this.#status.setHeartbeat(file, this.#heartbeat.nextDueAt);
    this.#uploader.noteActivity();
    this.#queueSnapshot({ kind: 'heartbeat', source: file, remotePath: path.basename(file), append: false });
    await this.#queueHealth();
    this.#emit('heartbeat', { file, nextDueSec: heartbeatGraceSec(intervalSec) });
  }

  /** The health status travels with the heartbeat: written into the spool, uploaded beside it. */
  async #queueHealth(): Promise<void> {
    const source = await this.#health.write();
    this.#queueSnapshot({ kind: 'heartbeat', source, remotePath: healthRemotePath(this.#config.heartbeat.name), append: false });
  }

  /** Health for the master (metrics) when it changed; a fresh status file once an outage is over. */
  async #publishHealth(): Promise<void> {
    if (this.#config.heartbeat.intervalSec > 0 && this.#health.recovered()) await this.#queueHealth();
    const document = await this.#health.document();
    const text = JSON.stringify({ ...document, writtenAt: '' });
    if (text === this.#healthSent) return;
    this.#healthSent = text;
    this.#emit('health', document);
  }

  #onNotified(file: string): void {
    this.#status.countNotify();
    this.#uploader.noteActivity();
    this.#logger.debug(`Notified: ${file}`);
    this.#uploader.warmUp();
    this.#queueSnapshot(this.#watchedFile(file));
  }

  /** Snapshots `source` into the spool and queues it; requests during a snapshot coalesce into one more. */
  /** Resolves once no snapshot is waiting or being taken. */
  async #snapshotsSettled(): Promise<void> {
    while (this.#snapshotLoops.size > 0) await Promise.allSettled([...this.#snapshotLoops]);
  }

  #queueSnapshot(target: SnapshotTarget): void {
    const { source } = target;
    if (this.#stopped) return;
    if (this.#snapshotting.has(source)) {
      this.#snapshotting.set(source, true);
      return;
    }
    this.#snapshotting.set(source, false);
    const loop = this.#snapshotLoop(target).finally(() => this.#snapshotLoops.delete(loop));
    this.#snapshotLoops.add(loop);
  }

  async #snapshotLoop(target: SnapshotTarget): Promise<void> {
    const { kind, source, remotePath } = target;
    try {
      do {
        // A drop-folder file is copied only when the uploader's queue has room for it
        // (snapshotLookahead.ts); stopping first leaves it in its drop folder for the next start.
        const paced = kind === 'drop';
        if (paced && !(await this.#lookahead.admit({ kind, source, remotePath, size: target.size ?? 0, queuedAt: Date.now() }))) return;
        try {
          this.#snapshotting.set(source, false);
          const snapshot = await this.#snapshotSlots.run(() =>
            this.#spool.snapshot({ kind, source, remotePath, ...(target.append ? { append: this.#appendBase(source) } : {}) }),
          );
          this.#snapshotFailures.delete(source);
          if (snapshot) {
            if (target.append && snapshot.appendFrom === undefined) {
              this.#logger.info(`${source} shrank or was rewritten since its last delivery: uploading it whole`);
            }
            this.#uploader.enqueue(snapshot);
          } else if (target.append && fs.existsSync(source)) {
            this.#logger.debug(`${source} has no bytes after the ones delivered; nothing to append`);
          } else {
            this.#logger.warn(`${source} was notified but does not exist; nothing to upload`);
          }
        } finally {
          if (paced) this.#lookahead.done();
        }
      } while (this.#snapshotting.get(source) && !this.#stopped);
    } catch (error) {
      const info = this.describeError(error);
      // The retry schedule of uploads: a disk that stays full is retried every longDelayMs, not
      // every quickDelayMs with a log line each time.
      const failures = (this.#snapshotFailures.get(source) ?? 0) + 1;
      this.#snapshotFailures.set(source, failures);
      const delay = retryDelay(this.#config.retry, failures, error);
      this.#status.recordError(info, source);
      if (info.code === 'UNSAFE_PATH') {
        // The name can never become a remote path: retrying would only repeat this line forever.
        this.#logger.error(`${info.message} [${info.code}]; ${source} is not uploaded: rename it to deliver it`);
        this.#emit('upload-failed', { file: source, error: info, willRetry: false });
        return;
      }
      this.#logger.error(`${info.message} [${info.code}]; trying the snapshot again in ${delay} ms`);
      // Disk full or a transient read error: without a retry, a file nobody notifies again would be stranded.
      const timer = setTimeout(() => {
        this.#snapshotRetries.delete(timer);
        this.#queueSnapshot(target);
      }, delay);
      this.#snapshotRetries.add(timer);
    } finally {
      this.#snapshotting.delete(source);
    }
  }

  /** What of `source` was delivered: the next delta starts there (and checks the file still holds it). */
  #appendBase(source: string): AppendBase {
    const record = this.#ledger.get(source);
    return record?.tailHash === undefined ? EMPTY_BASE : { offset: record.size, tailHash: record.tailHash };
  }

  setLogLevel(level: string): void {
    this.#logger.level = level;
    this.#logger.info(`Log level set to ${level}`);
  }

  /**
   * Graceful: one last look at the sidecars, then the queue is delivered while uploads succeed.
   * Hard: stops at once. Either way the spool keeps what was not delivered.
   */
  async stop({ graceful }: { graceful: boolean }): Promise<void> {
    if (this.#stopped) return;
    if (graceful) {
      this.#lookahead.admitAll();
      this.#sidecars.poll();
      while (this.#snapshotting.size) await Promise.all(this.#snapshotLoops);
    }
    this.#stopped = true;
    this.#lookahead.close();
    if (this.#tickTimer) clearInterval(this.#tickTimer);
    for (const timer of this.#snapshotRetries) clearTimeout(timer);
    this.#sidecars.close();
    await Promise.all(this.#dropFolders.map((folder) => folder.close()));
    await this.#uploader.stop({ graceful });
    await this.#spool.syncPending();
    await this.#ledger.save().catch(() => undefined);
    // The totals of the status file, for the next start (no heartbeats: no status file, no totals).
    if (this.#config.heartbeat.intervalSec > 0) await this.#health.write().catch(() => undefined);
    await this.#status.close();
    this.#logger.info(graceful ? 'Subtask stopped gracefully; unsent snapshots stay in the spool' : 'Subtask stopped');
  }
}

/** What to snapshot: a source, where it goes, and whether only its new bytes are taken. */
interface SnapshotTarget {
  kind: SnapshotKind;
  source: string;
  remotePath: string;
  append: boolean;
  /** A drop-folder file's size when it was handed over (listed while it waits for its snapshot). */
  size?: number;
}

/**
 * This agent's tag for remote temporary names (tempNames.ts): made once, kept in the spool, so
 * the same file gets the same temporary name after a restart. A spool that cannot keep it gets a
 * fresh tag each start (its leftovers are then removed only through the spool's records).
 */
export const AGENT_TAG_FILE = 'agent-tag';
function readAgentTag(spoolDir: string): string {
  const file = path.join(spoolDir, AGENT_TAG_FILE);
  try {
    const tag = fs.readFileSync(file, 'utf8').trim();
    if (/^[0-9a-f]{16}$/.test(tag)) return tag;
  } catch {
    // Not made yet.
  }
  const tag = newAgentTag();
  try {
    fs.mkdirSync(spoolDir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(file, `${tag}\n`, { mode: 0o600 });
  } catch {
    // Read-only or full: the tag lives as long as this process.
  }
  return tag;
}

function stateKey(file: string, size: number, mtimeMs: number): string {
  return `${file}\0${size}\0${mtimeMs}`;
}

/** One lane's share of the lowest rate `bandwidthLimit` ever allows, for the uploader's timeouts. */
function slowestShare(config: ResolvedConfig, transfers: number): { slowestBytesPerSecond?: number } {
  if (config.bandwidthLimit === undefined) return {};
  const lowest = lowestRate(parseBandwidthLimit(config.bandwidthLimit));
  return lowest === null ? {} : { slowestBytesPerSecond: lowest / transfers };
}
