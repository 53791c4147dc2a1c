/**
 * Drop folders: any regular file that appears is uploaded once its size and mtime have held still
 * for `stableMs`, and gets a `<file>.notify` sidecar that anyone can touch to upload it again.
 * chokidar reports changes quickly; a rescan every interval catches whatever an overflowing event
 * queue lost, so a missed event delays a file but never strands it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { ResolvedConfig, ResolvedWatchDir } from '../config/resolve.js';
import { isTempName } from '../shared/atomicCopy.js';
import { Slots } from '../shared/limit.js';
import type { Logger } from '../shared/logger.js';
import { HEARTBEAT_SUFFIX, isSidecar, sidecarOf, sourceOfSidecar } from '../shared/sidecar.js';
import type { Ledger } from '../spool/ledger.js';
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
 * Folders inside a drop folder that are never scanned: the spool, the logs, the archive. Only
 * those strictly inside it: a log folder that holds the drop folder (pysubtask's layout,
 * `logs/watch_all_in_here` with logs in `logs`) must not exclude the whole drop folder.
 */
export function dropFolderExclusions(config: ResolvedConfig, entry: ResolvedWatchDir): string[] {
  return [config.spoolDir, path.dirname(config.log.masterFile), path.join(entry.path, config.archive.toFolder)].filter((dir) =>
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
    const isDir = dirent.isDirectory() || (dirent.isSymbolicLink() && isDirectory(full));
    if (isDir) {
      if (entry.recursive) yield* listDropFolder(entry, isExcluded, full, visited);
    } else {
      yield full;
    }
  }
}

/** Follows links; false for anything that cannot be stat'ed (dangling, ELOOP, no permission). */
function isDirectory(file: string): boolean {
  try {
    return fs.statSync(file, { throwIfNoEntry: false })?.isDirectory() ?? false;
  } catch {
    return false;
  }
}

export function dropRemotePath(entry: ResolvedWatchDir, file: string): string {
  return path.relative(entry.path, file).split(path.sep).join('/');
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
  onReady: (file: string, remotePath: string) => void;
  now?: () => number;
}

interface Observation {
  size: number;
  mtimeMs: number;
  since: number;
}

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

  constructor(options: DropFolderOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
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
    fs.mkdirSync(this.#o.entry.path, { recursive: true });
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

  /** Looks at every file in the folder: the safety net under lost watch events. */
  rescan(): void {
    for (const file of listDropFolder(this.#o.entry, (file) => this.#isExcluded(file))) {
      if (isSidecar(file)) this.#checkSidecar(file);
      else this.observe(file);
    }
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
    if (!stats?.isFile()) return;
    const key = `${stats.size}:${stats.mtimeMs}`;
    if (this.#handedOver.get(file) === key) return;
    const { ledger, clock } = this.#o;
    if (ledger.isDelivered(file, stats.size, stats.mtimeMs)) {
      this.#handedOver.set(file, key);
      clock.baseline(sidecarOf(file), ledger.get(file)!.snapshotAt);
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
      this.#handOver(file, key);
      return;
    }
    if (seen && seen.size === stats.size && seen.mtimeMs === stats.mtimeMs) {
      if (now - seen.since >= this.#o.entry.stableMs) {
        this.#handOver(file, key);
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

  #handOver(file: string, key: string): void {
    this.#observations.delete(file);
    this.#handedOver.set(file, key);
    // A touch of the sidecar after this moment re-uploads the file; one before it is served by
    // the upload that starts now.
    const now = this.#now();
    const sidecar = sidecarOf(file);
    this.#o.clock.baseline(sidecar, now);
    if (!this.#sidecarsCreating.has(sidecar)) {
      // The first scan's sidecars (a backlog) trickle out two at a time, ahead of chokidar; once
      // chokidar watches, each creation makes it re-read the folder, so they go out at once.
      const create = () => this.#createSidecar(sidecar, now);
      const creating = (this.#firstScan ? this.#sidecarSlots.run(create) : create()).finally(() => this.#sidecarsCreating.delete(sidecar));
      this.#sidecarsCreating.set(sidecar, creating);
    }
    this.#o.onReady(file, this.remotePathOf(file));
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
    const mtime = sidecarMtime(sidecar);
    if (mtime === null) return;
    const record = this.#o.ledger.get(file);
    // First sight of a sidecar: touches after the last delivered snapshot are still to be served.
    this.#o.clock.baseline(sidecar, record ? record.snapshotAt : mtime);
    if (!this.#o.clock.advance(sidecar, mtime)) return;
    if (isSidecar(file) || !fs.existsSync(file)) {
      // A sidecar never uploads another sidecar; a touch for a file that is not there does nothing.
      this.#o.logger.warn(`${sidecar} was touched, but ${isSidecar(file) ? 'a sidecar is never uploaded' : `${path.basename(file)} does not exist`}; nothing to upload`);
      return;
    }
    this.#handedOver.delete(file);
    this.#o.onReady(file, this.remotePathOf(file));
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#rechecks.values()) clearTimeout(timer);
    this.#rechecks.clear();
    await this.#watcher?.close();
    this.#watcher = null;
  }
}
