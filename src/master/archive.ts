/**
 * Archival of expired data files, as pysubtask's master does at start: every regular file in a
 * data folder whose mtime is older than `afterDays` moves to `<folder>/<toFolder>/<YYYYMM>/<DD>/`,
 * dated by the file's own mtime (the day its data was written, not the day it was archived).
 * Nothing is ever overwritten: a taken name becomes `name_1.ext`, `name_2.ext`, …
 */
import fs from 'node:fs';
import path from 'node:path';

export interface ArchiveOptions {
  afterDays: number;
  toFolder: string;
  /** ms since epoch; injectable so tests need not wait days. Default `Date.now()`. */
  now?: number;
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

/** n=0 → unchanged; n≥1 → `name_n.ext` (only the last extension: `a.tar.gz` → `a.tar_1.gz`). */
export function withCollisionSuffix(fileName: string, n: number): string {
  if (n === 0) return fileName;
  const ext = path.extname(fileName);
  const stem = fileName.slice(0, fileName.length - ext.length);
  return `${stem}_${n}${ext}`;
}

function errorCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

async function exists(p: string): Promise<boolean> {
  try {
    // lstat, not access/stat: a dangling symlink at the target still occupies the name.
    await fs.promises.lstat(p);
    return true;
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Moves `from` to `to` unless `to` is taken; returns false when it is, so the caller tries the
 * next suffix. rename(2) silently replaces an existing target, hence the check first; the window
 * between check and rename is only a concern if something else writes into the archive folder
 * at the same moment, which nothing in pushtask does.
 */
async function moveIfFree(from: string, to: string, mtime: Date, atime: Date): Promise<boolean> {
  if (await exists(to)) return false;
  try {
    await fs.promises.rename(from, to);
    return true;
  } catch (err) {
    if (errorCode(err) !== 'EXDEV') throw err;
  }
  // The archive folder may be a mount point of its own (rename cannot cross devices).
  // COPYFILE_EXCL makes the no-overwrite rule atomic on this path.
  try {
    await fs.promises.copyFile(from, to, fs.constants.COPYFILE_EXCL);
  } catch (err) {
    if (errorCode(err) === 'EEXIST') return false;
    await fs.promises.rm(to, { force: true }).catch(() => {});
    throw err;
  }
  try {
    // A copy gets a fresh mtime; the archive's date folders (and the user) rely on the original.
    await fs.promises.utimes(to, atime, mtime);
  } catch (err) {
    await fs.promises.rm(to, { force: true }).catch(() => {});
    throw err;
  }
  await fs.promises.unlink(from);
  return true;
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
    if (errorCode(err) === 'ENOENT') return [];
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

    const target = archiveTarget(folder, options.toFolder, name, stat.mtime);
    const dir = path.dirname(target);
    await fs.promises.mkdir(dir, { recursive: true });

    for (let n = 0; ; n++) {
      const to = path.join(dir, withCollisionSuffix(name, n));
      try {
        if (!(await moveIfFree(from, to, stat.mtime, stat.atime))) continue;
      } catch (err) {
        // Someone else (the user, a second cleanup) took the file away first: not our failure.
        if (errorCode(err) === 'ENOENT' && !(await exists(from))) break;
        throw err;
      }
      moved.push({ from, to });
      break;
    }
  }
  return moved;
}
