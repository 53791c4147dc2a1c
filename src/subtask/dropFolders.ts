/**
 * Drop folders: any regular file that appears is uploaded once its size and mtime have held still
 * for `stableMs`, and gets a `<file>.notify` sidecar that anyone can touch to upload it again.
 * chokidar reports changes quickly; a rescan every interval catches whatever an overflowing event
 * queue lost, so a missed event delays a file but never strands it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import picomatch from 'picomatch';
import type { ResolvedConfig, ResolvedWatchDir } from '../config/resolve.js';
import { sleep } from '../shared/abort.js';
import { isTempName } from '../shared/atomicCopy.js';
import { Slots } from '../shared/limit.js';
import type { Logger } from '../shared/logger.js';
import { HEARTBEAT_SUFFIX, isSidecar, sidecarOf, sourceOfSidecar } from '../shared/sidecar.js';
import type { Ledger } from '../spool/ledger.js';
import { clearDelivered, fileOfOutboxTemp, finish, outboxTempOf, type ClearOptions, type OutboxOutcome } from './outbox.js';
import { sidecarMtime, type SidecarClock } from './sidecars.js';

const PARTIAL_SUFFIXES = ['.tmp', '.temp', '.part', '.partial', '.crdownload', '.download', '.swp', '~'];

/** Names that are never data: dot files, our own sidecars and temp files, other tools' partials. */
export function isIgnoredName(name: string): boolean {
  if (name.startsWith('.') || name.startsWith('~')) return true;
  if (name.endsWith(HEARTBEAT_SUFFIX) || isTempName(name)) return true;
  const lower = name.toLowerCase();
  return PARTIAL_SUFFIXES.some((suffix) => lower.endsWith(suffix));
}

/**
 * Folders inside a drop folder that are never scanned: the spool, the logs, the archive, the
 * `afterUpload.moveTo` folder. Only
 * those strictly inside it: a log folder that holds the drop folder (pysubtask's layout,
 * `logs/watch_all_in_here` with logs in `logs`) must not exclude the whole drop folder.
 */
export function dropFolderExclusions(config: ResolvedConfig, entry: ResolvedWatchDir): string[] {
  const moveTo = entry.afterUpload.kind === 'move' ? [entry.afterUpload.dir] : [];
  return [config.spoolDir, path.dirname(config.log.masterFile), path.join(entry.path, config.archive.toFolder), ...moveTo].filter((dir) =>
    path.resolve(dir).startsWith(path.resolve(entry.path) + path.sep),
  );
}

/** Sidecars are not excluded: they are how a drop-folder file is asked to upload again. */
export function isExcludedFromDropFolder(file: string, excludedDirs: readonly string[]): boolean {
  if (excludedDirs.some((dir) => file === dir || file.startsWith(dir + path.sep))) return true;
  const name = path.basename(file);
  return !isSidecar(name) && isIgnoredName(name);
}

/**
 * Every file (sidecars included) in a drop folder, honouring its recursion and symlink settings.
 * Followed links are entered once per real folder: a link back up the tree is no endless loop.
 */
export function* listDropFolder(
  entry: ResolvedWatchDir,
  isExcluded: (file: string) => boolean,
  dir = entry.path,
  visited = new Set<string>(),
): Generator<string> {
  let entries: fs.Dirent[];
  try {
    if (entry.followSymlinks) {
      const real = fs.realpathSync(dir);
      if (visited.has(real)) return;
      visited.add(real);
    }
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const dirent of entries) {
    const full = path.join(dir, dirent.name);
    if (isExcluded(full)) continue;
    if (dirent.isSymbolicLink() && !entry.followSymlinks) continue;
    const isDir = dirent.isDirectory() || (dirent.isSymbolicLink() && statFollowingLinks(full)?.isDirectory() === true);
    if (isDir) {
      if (entry.recursive) yield* listDropFolder(entry, isExcluded, full, visited);
    } else {
      yield full;
    }
  }
}

/** Follows links; undefined for anything that cannot be stat'ed (dangling, ELOOP, no permission). */
function statFollowingLinks(file: string): fs.Stats | undefined {
  try {
    return fs.statSync(file, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

export function dropRemotePath(entry: ResolvedWatchDir, file: string): string {
  return path.relative(entry.path, file).split(path.sep).join('/');
}

/**
 * The drop folder's `include` / `exclude` patterns as one test on a file's path relative to the
 * folder (`/`-separated). picomatch's `basename` option makes a pattern without a slash match the
 * file name at any depth (`*.csv` takes `site-1/a.csv`), as users of rsync or rclone filters expect.
 */
export function dropFolderFilter(entry: Pick<ResolvedWatchDir, 'include' | 'exclude'>): (relative: string) => boolean {
  const include = entry.include ? globMatcher(entry.include) : () => true;
  const exclude = entry.exclude.length ? globMatcher(entry.exclude) : () => false;
  return (relative) => include(relative) && !exclude(relative);
}

/**
 * Patterns without a slash test the file name, the others the whole relative path. (picomatch's
 * own `basename` option also applies to patterns with a slash, so `raw/**` would never match.)
 */
function globMatcher(patterns: readonly string[]): (relative: string) => boolean {
  const options = { dot: true };
  const byName = patterns.filter((pattern) => !pattern.includes('/'));
  const byPath = patterns.filter((pattern) => pattern.includes('/'));
  const name = byName.length ? picomatch(byName, options) : () => false;
  const full = byPath.length ? picomatch(byPath, options) : () => false;
  return (relative) => name(relative.slice(relative.lastIndexOf('/') + 1)) || full(relative);
}

export interface DropFolderOptions {
  entry: ResolvedWatchDir;
  /** Folders inside the drop folder that are never scanned (spool, archive, logs). */
  excludedDirs: readonly string[];
  ledger: Ledger;
  /** True when a snapshot of exactly this state already waits in the spool. */
  isQueued: (file: string, size: number, mtimeMs: number) => boolean;
  clock: SidecarClock;
  logger: Logger;
  /** A file is stable and should be snapshotted; `force` when its sidecar was touched. */
  onReady: (file: string, remotePath: string, size: number) => void;
  /** Resolves once no snapshot is waiting or being taken: sidecars are made after them (#handOver). */
  snapshotsSettled?: () => Promise<void>;
  now?: () => number;
}

interface Observation {
  size: number;
  mtimeMs: number;
  since: number;
}

/** Longest a drop-folder sidecar waits for the snapshots ahead of it. */
const SIDECAR_DELAY_MAX_MS = 10_000;

export class DropFolderWatcher {
  readonly #o: DropFolderOptions;
  readonly #now: () => number;
  readonly #observations = new Map<string, Observation>();
  /** The state of each file last handed over for upload ("size:mtime"). */
  readonly #handedOver = new Map<string, string>();
  readonly #rechecks = new Map<string, NodeJS.Timeout>();
  /** Names already reported as not valid UTF-8 (reported once, not every rescan). */
  readonly #undecodable = new Set<string>();
  #watcher: FSWatcher | null = null;
  #firstScan = false;
  #closed = false;
  /** Sidecars being created, by path (see #createSidecar). */
  readonly #sidecarsCreating = new Map<string, Promise<void>>();
  /** Two at a time: a backlog's 1,000 creations must not queue ahead of its snapshots in the thread pool. */
  readonly #sidecarSlots = new Slots(2);
  /** Sidecars of files handed over while watching, made together once the snapshots settle (#handOver). */
  readonly #sidecarsDue = new Map<string, number>();
  #sidecarBatch: Promise<void> | null = null;
  /** Aborted by close(): a batch still waiting is made at once. */
  readonly #closing = new AbortController();
  /** include / exclude, on the path relative to the folder. */
  readonly #wanted: (relative: string) => boolean;
  /** Delivered files being deleted or moved (afterUpload), by path. */
  readonly #clearing = new Map<string, Promise<void>>();

  constructor(options: DropFolderOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#wanted = dropFolderFilter(options.entry);
  }

  get dir(): string {
    return this.#o.entry.path;
  }

  /**
   * Scans the folder, then starts watching it once the sidecars of what that scan handed over
   * exist: created under chokidar's watch, they made it re-read the whole folder (an lstat per
   * entry) again and again. Until then, and for anything its events miss, the rescans look.
   */
  start(): void {
    // The master checked it at start (watchedPaths.ts); a folder removed since (a subtask restart)
    // is created again only when the config says so; otherwise the rescans find it once it is back.
    if (this.#o.entry.create) fs.mkdirSync(this.#o.entry.path, { recursive: true });
    else if (!fs.existsSync(this.#o.entry.path)) this.#o.logger.warn(`Drop folder ${this.#o.entry.path} does not exist; files in it are delivered once it exists`);
    this.#firstScan = true;
    try {
      this.rescan();
    } finally {
      this.#firstScan = false;
    }
    void this.#watchOnceSidecarsExist();
  }

  async #watchOnceSidecarsExist(): Promise<void> {
    await Promise.all(this.#sidecarsCreating.values());
    if (this.#closed) return;
    const { entry, logger } = this.#o;
    this.#watcher = watch(entry.path, {
      ignored: (file) => file !== entry.path && this.#isExcluded(file),
      depth: entry.recursive ? undefined : 0,
      usePolling: entry.usePolling,
      followSymlinks: entry.followSymlinks,
      ignoreInitial: true, // the first scan saw what was there
      persistent: false,
    });
    this.#watcher.on('add', (file) => this.#onEvent(file));
    this.#watcher.on('change', (file) => this.#onEvent(file));
    this.#watcher.on('unlink', (file) => this.#forget(file));
    this.#watcher.on('error', (error) => logger.warn({ err: error }, `Watching drop folder ${entry.path} failed; rescanning every interval instead`));
  }

  #isExcluded(file: string): boolean {
    return isExcludedFromDropFolder(file, this.#o.excludedDirs);
  }

  #onEvent(file: string): void {
    if (isSidecar(file)) this.#checkSidecar(file);
    else this.observe(file);
  }

  #forget(file: string): void {
    this.#observations.delete(file);
    this.#handedOver.delete(file);
    const timer = this.#rechecks.get(file);
    if (timer) clearTimeout(timer);
    this.#rechecks.delete(file);
  }

  /**
   * Looks at every file in the folder: the safety net under lost watch events. The first scan also
   * finds outbox temporaries a crash left (see outbox.ts) and finishes or undoes their job.
   */
  rescan(): void {
    const firstScan = this.#firstScan;
    const isExcluded = (file: string) => this.#isExcluded(file) && !(firstScan && fileOfOutboxTemp(file) !== null);
    for (const file of listDropFolder(this.#o.entry, isExcluded)) {
      if (firstScan && fileOfOutboxTemp(file) !== null) this.#recoverOutboxTemp(file);
      else if (isSidecar(file)) this.#checkSidecar(file);
      else this.observe(file);
    }
  }

  #isWanted(file: string): boolean {
    return this.#wanted(dropRemotePath(this.#o.entry, file));
  }

  /** The transport confirmed `file` and the ledger has it: apply `afterUpload`. */
  delivered(file: string): void {
    if (this.#o.entry.afterUpload.kind !== 'keep') this.#clear(file);
  }

  /** Finishes what `afterUpload` had started when the agent died (the ledger decides which way). */
  #recoverOutboxTemp(temp: string): void {
    const file = fileOfOutboxTemp(temp)!;
    const { afterUpload } = this.#o.entry;
    const options = this.#clearOptions(file, afterUpload.kind === 'keep' ? { kind: 'delete' } : afterUpload);
    // With `keep` now, nothing counts as delivered: the file goes back under its name.
    if (afterUpload.kind === 'keep') options.isDelivered = () => false;
    this.#track(file, () => finish(file, temp, options));
  }

  #clear(file: string): void {
    const { afterUpload } = this.#o.entry;
    if (afterUpload.kind === 'keep' || this.#clearing.has(file) || this.#closed) return;
    const options = this.#clearOptions(file, afterUpload);
    // The sidecar goes with its file: wait until the one being created for it exists.
    const sidecarCreated = this.#sidecarsCreating.get(sidecarOf(file));
    this.#track(file, async () => {
      await sidecarCreated;
      return clearDelivered(file, options);
    });
  }

  #clearOptions(file: string, afterUpload: ClearOptions['afterUpload']): ClearOptions {
    return { afterUpload, dropDir: this.#o.entry.path, isDelivered: (stats) => this.#o.ledger.isDelivered(file, stats.size, stats.mtimeMs) };
  }

  #track(file: string, job: () => Promise<OutboxOutcome>): void {
    const { ledger, logger } = this.#o;
    const done = job()
      .then((outcome) => {
        switch (outcome.kind) {
          case 'deleted':
          case 'moved':
            logger.info(outcome.kind === 'deleted' ? `Delivered, so deleted ${file}` : `Delivered, so moved ${file} → ${outcome.to}`);
            this.#forget(file);
            ledger.forget(file);
            ledger.saveSoon((error) => logger.warn({ err: error }, `Could not save ${ledger.file}`));
            break;
          case 'changed':
            logger.info(`${file} changed since its snapshot was taken: kept (as ${outcome.keptAs}) and sent again`);
            this.#handedOver.delete(outcome.keptAs);
            if (!this.#closed) this.observe(outcome.keptAs);
            break;
          case 'gone':
            this.#forget(file);
            break;
        }
      })
      .catch((error: unknown) => {
        logger.warn({ err: error }, `Could not ${this.#o.entry.afterUpload.kind === 'move' ? 'move' : 'delete'} the delivered ${file} (${(error as Error).message}); trying again at the next start`);
      })
      .finally(() => this.#clearing.delete(file));
    this.#clearing.set(file, done);
  }

  remotePathOf(file: string): string {
    return dropRemotePath(this.#o.entry, file);
  }

  /** Notes the file's state; hands it over once that state held for `stableMs`. */
  observe(file: string): void {
    let stats: fs.Stats | undefined;
    try {
      stats = this.#o.entry.followSymlinks ? fs.statSync(file, { throwIfNoEntry: false }) : fs.lstatSync(file, { throwIfNoEntry: false });
    } catch {
      return; // a symlink loop (ELOOP), a name too long, no permission: nothing to read
    }
    if (!stats && file.includes('\uFFFD') && !this.#undecodable.has(file)) {
      // Node decodes file names as UTF-8: a name in another encoding comes back with U+FFFD and
      // cannot be opened under that name. Say so once instead of skipping it in silence.
      this.#undecodable.add(file);
      this.#o.logger.warn(`${file}: its name is not valid UTF-8, so it cannot be read; rename it (UTF-8) to deliver it`);
    }
    if (!stats?.isFile() || !this.#isWanted(file)) return;
    const key = `${stats.size}:${stats.mtimeMs}`;
    if (this.#handedOver.get(file) === key) return;
    const { ledger, clock } = this.#o;
    if (ledger.isDelivered(file, stats.size, stats.mtimeMs)) {
      this.#handedOver.set(file, key);
      clock.baseline(sidecarOf(file), ledger.get(file)!.snapshotAt);
      // Delivered, but still here: the agent stopped between the upload and `afterUpload`.
      this.#clear(file);
      return;
    }
    if (this.#o.isQueued(file, stats.size, stats.mtimeMs)) {
      this.#handedOver.set(file, key);
      return;
    }
    const now = this.#now();
    const seen = this.#observations.get(file);
    if (!seen && this.#firstScan && now - stats.mtimeMs >= this.#o.entry.stableMs) {
      // There before the agent started and not written to for `stableMs` (a write sets the mtime
      // to now): the backlog of a previous run goes out at once instead of after another wait.
      this.#handOver(file, key, stats.size);
      return;
    }
    if (seen && seen.size === stats.size && seen.mtimeMs === stats.mtimeMs) {
      if (now - seen.since >= this.#o.entry.stableMs) {
        this.#handOver(file, key, stats.size);
        return;
      }
    } else {
      this.#observations.set(file, { size: stats.size, mtimeMs: stats.mtimeMs, since: now });
    }
    this.#scheduleRecheck(file);
  }

  #scheduleRecheck(file: string): void {
    if (this.#rechecks.has(file)) return;
    const timer = setTimeout(() => {
      this.#rechecks.delete(file);
      this.observe(file);
    }, this.#o.entry.stableMs + 5);
    this.#rechecks.set(file, timer);
  }

  #handOver(file: string, key: string, size: number): void {
    this.#observations.delete(file);
    this.#handedOver.set(file, key);
    // A touch of the sidecar after this moment re-uploads the file; one before it is served by
    // the upload that starts now.
    const now = this.#now();
    const sidecar = sidecarOf(file);
    this.#o.clock.baseline(sidecar, now);
    if (!this.#sidecarsCreating.has(sidecar)) {
      // The first scan's sidecars (a backlog) trickle out two at a time, ahead of chokidar. Once
      // chokidar watches, each creation makes it re-read the folder, so they go out together, and
      // after the snapshots: 1,000 files dropped at once otherwise held their first snapshot back
      // by a second (3,000 thread-pool calls and chokidar's reaction queued ahead of it).
      const creating = this.#firstScan ? this.#sidecarSlots.run(() => this.#createSidecar(sidecar, now)) : this.#createSidecarLater(sidecar, now);
      this.#sidecarsCreating.set(
        sidecar,
        creating.finally(() => this.#sidecarsCreating.delete(sidecar)),
      );
    }
    this.#o.onReady(file, this.remotePathOf(file), size);
  }

  /** Joins the next batch of sidecars, made once the snapshots settle (at most SIDECAR_DELAY_MAX_MS later). */
  #createSidecarLater(sidecar: string, handedOverAt: number): Promise<void> {
    this.#sidecarsDue.set(sidecar, handedOverAt);
    this.#sidecarBatch ??= (async () => {
      const settled = new AbortController();
      await Promise.race([this.#o.snapshotsSettled?.(), sleep(SIDECAR_DELAY_MAX_MS, AbortSignal.any([this.#closing.signal, settled.signal]))]);
      settled.abort(); // ends the sleep's timer
      const due = [...this.#sidecarsDue];
      this.#sidecarsDue.clear();
      this.#sidecarBatch = null;
      await Promise.all(due.map(([path, at]) => this.#createSidecar(path, at)));
    })();
    return this.#sidecarBatch;
  }

  /**
   * Creates a handed-over file's sidecar off the event loop (creating a file may wait milliseconds
   * for the file system's journal). It gets the hand-over time as its mtime, so it never looks
   * like a touch that came after the upload (at the next start, touches are compared with the
   * delivered snapshot's start). One that exists already (an earlier run, or someone touched it
   * meanwhile) is kept.
   */
  async #createSidecar(sidecar: string, handedOverAt: number): Promise<void> {
    try {
      const handle = await fs.promises.open(sidecar, 'wx');
      try {
        const at = new Date(handedOverAt);
        await handle.utimes(at, at);
      } finally {
        await handle.close();
      }
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST' && code !== 'ENOENT') this.#o.logger.warn({ err: error }, `Could not create ${sidecar}; the file is still uploaded`);
    }
  }

  #checkSidecar(sidecar: string): void {
    // Being created by us: until its mtime is set back to the hand-over time it would look like a
    // touch. A touch by someone else meanwhile is seen by the next rescan.
    if (this.#sidecarsCreating.has(sidecar)) return;
    const file = sourceOfSidecar(sidecar);
    if (!this.#isWanted(file)) return;
    if (this.#firstScan && this.#o.entry.afterUpload.kind !== 'keep' && !fs.existsSync(file) && !fs.existsSync(outboxTempOf(file))) {
      // Its file left the outbox and the agent died before the sidecar followed it.
      fs.rmSync(sidecar, { force: true });
      return;
    }
    const mtime = sidecarMtime(sidecar);
    if (mtime === null) return;
    const record = this.#o.ledger.get(file);
    // First sight of a sidecar: touches after the last delivered snapshot are still to be served.
    this.#o.clock.baseline(sidecar, record ? record.snapshotAt : mtime);
    if (!this.#o.clock.advance(sidecar, mtime)) return;
    const size = isSidecar(file) ? undefined : statFollowingLinks(file)?.size;
    if (size === undefined) {
      // A sidecar never uploads another sidecar; a touch for a file that is not there does nothing.
      this.#o.logger.warn(`${sidecar} was touched, but ${isSidecar(file) ? 'a sidecar is never uploaded' : `${path.basename(file)} does not exist`}; nothing to upload`);
      return;
    }
    this.#handedOver.delete(file);
    this.#o.onReady(file, this.remotePathOf(file), size);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#closing.abort();
    await this.#sidecarBatch;
    for (const timer of this.#rechecks.values()) clearTimeout(timer);
    this.#rechecks.clear();
    await this.#watcher?.close();
    this.#watcher = null;
    // Files delivered after this (a graceful stop's last uploads) are cleared at the next start.
    await Promise.all(this.#clearing.values());
  }
}
