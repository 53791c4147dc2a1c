/**
 * Copy a file so that the destination name only ever holds a complete copy:
 * copy to a temporary sibling, fsync, set the mtime, rename over the target.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

export function tempSiblingName(target: string): string {
  const base = path.basename(target).slice(0, 100);
  return path.join(path.dirname(target), `.${base}.${randomBytes(4).toString('hex')}.pushtask-tmp`);
}

export function isTempName(name: string): boolean {
  return name.endsWith('.pushtask-tmp');
}

export async function fsyncPath(file: string): Promise<void> {
  const handle = await fs.open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export interface AtomicCopyOptions {
  /** Keep this modification time on the copy. */
  mtime?: Date;
  /** Create missing parent folders (owner-only when `private`). */
  mkdir?: boolean;
  private?: boolean;
  /** Checked before the rename: a copy abandoned by a timeout must never land over a newer one. */
  signal?: AbortSignal;
}

/**
 * Returns the size of the copy. The copy itself is `fs.copyFile` (copy_file_range on Linux: the
 * kernel copies, no bytes pass through JavaScript); the rest goes through one handle, so the temp
 * file's path is resolved twice (copy, open) instead of five times.
 */
export async function atomicCopy(source: string, target: string, options: AtomicCopyOptions = {}): Promise<number> {
  if (options.mkdir) await fs.mkdir(path.dirname(target), { recursive: true, mode: options.private ? 0o700 : 0o777 });
  const temp = tempSiblingName(target);
  try {
    await fs.copyFile(source, temp);
    let size: number;
    const handle = await fs.open(temp, 'r+');
    try {
      if (options.private) await handle.chmod(0o600);
      if (options.mtime) await handle.utimes(options.mtime, options.mtime);
      await handle.sync();
      ({ size } = await handle.stat());
    } finally {
      await handle.close();
    }
    options.signal?.throwIfAborted();
    await fs.rename(temp, target);
    return size;
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
}
