/**
 * Archival of expired data files, as pysubtask's master does at start: every regular file in a
 * data folder whose mtime is older than `afterDays` moves to `<folder>/<toFolder>/<YYYYMM>/<DD>/`,
 * dated by the file's own mtime (the day its data was written, not the day it was archived).
 * Nothing is ever overwritten: a taken name becomes `name_1.ext`, `name_2.ext`, …
 *
 * Unlike pysubtask, only delivered data is archived: a file moves only when the spool's ledger
 * says its current content (size and mtime) reached the server. An old file that was never
 * delivered (the agent was down, the link was out) stays where the catch-up finds it, is
 * delivered, and is archived at a later start. Archival moving it first stranded it for good.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ResolvedConfig } from '../config/resolve.js';
import { moveToFreeName } from '../shared/moveNoClobber.js';
import type { Ledger } from '../spool/ledger.js';

export { withCollisionSuffix } from '../shared/moveNoClobber.js';

export interface ArchiveOptions {
  afterDays: number;
  toFolder: string;
  /** ms since epoch; injectable so tests need not wait days. Default `Date.now()`. */
  now?: number;
  /**
   * Whether this expired file may move; by default every one may. The agent passes the ledger's
   * "delivered exactly as it is now", so undelivered data is never moved out of reach.
   */
  mayArchive?: (file: string, stats: fs.Stats) => boolean;
}

export interface ArchivedFile {
  from: string;
  to: string;
}

const DAY_MS = 86_400_000;

// Sidecars belong to the live agent (and are cleaned up separately), dot files are usually
// editor/OS droppings or temp names: none of them is logged data worth archiving.
function isIgnoredName(name: string): boolean {
  return name.startsWith('.') || name.endsWith('.notify') || name.endsWith('.heartbeat');
}

/** `<folder>/<toFolder>/<YYYYMM>/<DD>/<name>`, dated in local time, before collision suffixing. */
export function archiveTarget(folder: string, toFolder: string, name: string, mtime: Date): string {
  // Local time, because that is the calendar the user who looks for "the 5th's data" thinks in.
  const yyyymm = `${mtime.getFullYear()}${String(mtime.getMonth() + 1).padStart(2, '0')}`;
  const dd = String(mtime.getDate()).padStart(2, '0');
  return path.join(folder, toFolder, yyyymm, dd, name);
}

/**
 * Moves every expired regular file of `folder` (not recursive) into its dated archive folder.
 * Symlinks, sub-folders (the archive folder itself among them), dot files and sidecars stay.
 * A missing `folder` yields []. Returns what was moved, for the caller to log. Ends early (between
 * two files) once `signal` aborts.
 */
export async function archiveExpiredFiles(folder: string, options: ArchiveOptions, signal?: AbortSignal): Promise<ArchivedFile[]> {
  const now = options.now ?? Date.now();
  const maxAgeMs = options.afterDays * DAY_MS;

  let names: string[];
  try {
    names = await fs.promises.readdir(folder);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }

  const moved: ArchivedFile[] = [];
  for (const name of names.sort()) {
    // stop() during start(): what is moved stays moved, the rest waits for the next start.
    if (signal?.aborted) break;
    if (isIgnoredName(name)) continue;
    const from = path.join(folder, name);

    // lstat: a symlink is never a regular file here, so it is never followed. Synchronous: a
    // read-only call, cheaper than a thread-pool round trip per file in a folder of thousands.
    const stat = fs.lstatSync(from, { throwIfNoEntry: false });
    if (!stat) continue; // removed since readdir: nothing to archive
    if (!stat.isFile() || !(now - stat.mtimeMs > maxAgeMs)) continue;
    if (options.mayArchive && !options.mayArchive(from, stat)) continue;

    const target = archiveTarget(folder, options.toFolder, name, stat.mtime);
    const to = await moveToFreeName(from, path.dirname(target), name, stat);
    if (to !== null) moved.push({ from, to });
  }
  return moved;
}

export interface ArchiveReport {
  moved: ArchivedFile[];
  /** Expired files kept because their current content was not delivered yet. */
  undelivered: string[];
}

/**
 * Archival at start over the first watched file's folder and each drop folder (not recursive),
 * guarded by the ledger; archived files leave the ledger (they are no longer where it says).
 */
export async function archiveDeliveredFiles(config: ResolvedConfig, ledger: Ledger, signal?: AbortSignal, now = Date.now()): Promise<ArchiveReport> {
  const report: ArchiveReport = { moved: [], undelivered: [] };
  if (!config.archive.enabled) return report;
  const folders = new Set(config.watch.map((entry) => (entry.kind === 'file' ? path.dirname(entry.path) : entry.path)));
  const mayArchive = (file: string, stats: fs.Stats): boolean => {
    if (ledger.isDelivered(file, stats.size, stats.mtimeMs)) return true;
    report.undelivered.push(file);
    return false;
  };
  for (const folder of folders) {
    if (signal?.aborted) break;
    report.moved.push(...(await archiveExpiredFiles(folder, { ...config.archive, now, mayArchive }, signal)));
  }
  for (const { from } of report.moved) ledger.forget(from);
  if (report.moved.length) await ledger.save();
  return report;
}
