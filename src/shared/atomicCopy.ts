/**
 * Copy a file so that the destination name only ever holds a complete copy:
 * copy to a temporary sibling, fsync, set the mtime, rename over the target.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

export function tempSiblingName(target: string): string {
  const base = shortenName(path.basename(target));
  return path.join(path.dirname(target), `.${base}.${randomBytes(4).toString('hex')}.pushtask-tmp`);
}

/**
 * The start of `name`, at most `maxBytes` long in UTF-8 and cut at a character boundary. Names
 * are limited in bytes (255 on most file systems): a temporary name built from 100 *characters*
 * of an 85-character, 255-byte CJK name would be too long.
 */
export function shortenName(name: string, maxBytes = 100): string {
  let out = '';
  let bytes = 0;
  for (const char of name) {
    bytes += Buffer.byteLength(char);
    if (bytes > maxBytes) break;
    out += char;
  }
  return out;
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

/** Returns the size of the copy. */
export async function atomicCopy(source: string, target: string, options: AtomicCopyOptions = {}): Promise<number> {
  if (options.mkdir) await fs.mkdir(path.dirname(target), { recursive: true, mode: options.private ? 0o700 : 0o777 });
  const temp = tempSiblingName(target);
  try {
    await fs.copyFile(source, temp);
    if (options.private) await fs.chmod(temp, 0o600);
    await fsyncPath(temp);
    if (options.mtime) await fs.utimes(temp, options.mtime, options.mtime);
    const { size } = await fs.stat(temp);
    options.signal?.throwIfAborted();
    await fs.rename(temp, target);
    return size;
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
}
