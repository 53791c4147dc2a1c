/**
 * Moving a file to a folder without ever replacing what is there: a taken name becomes
 * `name_1.ext`, `name_2.ext`, … Archival and the drop folders' `afterUpload: { moveTo }` share it.
 */
import fs from 'node:fs';
import path from 'node:path';

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

export async function exists(p: string): Promise<boolean> {
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
 * between check and rename is only a concern if something else writes into the target folder
 * at the same moment, which nothing in pushtask does.
 */
export async function moveIfFree(from: string, to: string, mtime: Date, atime: Date): Promise<boolean> {
  if (await exists(to)) return false;
  try {
    await fs.promises.rename(from, to);
    return true;
  } catch (err) {
    if (errorCode(err) !== 'EXDEV') throw err;
  }
  // The target folder may be a mount point of its own (rename cannot cross devices).
  // COPYFILE_EXCL makes the no-overwrite rule atomic on this path.
  try {
    await fs.promises.copyFile(from, to, fs.constants.COPYFILE_EXCL);
  } catch (err) {
    if (errorCode(err) === 'EEXIST') return false;
    await fs.promises.rm(to, { force: true }).catch(() => {});
    throw err;
  }
  try {
    // A copy gets a fresh mtime; date folders (and the user) rely on the original.
    await fs.promises.utimes(to, atime, mtime);
  } catch (err) {
    await fs.promises.rm(to, { force: true }).catch(() => {});
    throw err;
  }
  await fs.promises.unlink(from);
  return true;
}

/**
 * Moves `from` into `dir` as `name`, or the first free `name_n.ext`; creates `dir`. Returns the
 * path it got, or null when `from` was gone (someone else took it away first: not our failure).
 */
export async function moveToFreeName(from: string, dir: string, name: string, stats: fs.Stats): Promise<string | null> {
  await fs.promises.mkdir(dir, { recursive: true });
  for (let n = 0; ; n++) {
    const to = path.join(dir, withCollisionSuffix(name, n));
    try {
      if (await moveIfFree(from, to, stats.mtime, stats.atime)) return to;
    } catch (err) {
      if (errorCode(err) === 'ENOENT' && !(await exists(from))) return null;
      throw err;
    }
  }
}
