/**
 * Copy a file so that the destination name only ever holds a complete copy:
 * copy to a temporary sibling, fsync, set the mtime, rename over the target.
 */
import { randomBytes } from 'node:crypto';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const fsync = promisify(fsSync.fsync);

/** Unique per process (random, drawn once) and per call (a counter): no RNG call per file. */
const tempPrefix = randomBytes(4).toString('hex');
let tempCounter = 0;

export function tempSiblingName(target: string): string {
  const base = shortenName(path.basename(target));
  return path.join(path.dirname(target), `.${base}.${tempPrefix}${(tempCounter += 1).toString(36)}.pushtask-tmp`);
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
  /** fsync the copy before the rename. @default true */
  sync?: boolean;
  /** Awaited with the temporary name before it is created (to find it again after a crash). */
  onTemporaryName?: (temp: string) => Promise<void>;
  /** The temporary sibling's name (a stable one replaces its own leftover). @default unique per call */
  tempName?: string;
}

/**
 * Returns the size of the copy. The copy itself is `fs.copyFile` (copy_file_range on Linux: the
 * kernel copies, no bytes pass through JavaScript; on XFS and btrfs it shares the blocks instead:
 * a 1 GiB snapshot took 0.2–0.8 ms on XFS here, so no FICLONE attempt of our own). Calls that change the file system (chmod,
 * utimes, rename) go through the thread pool: each may wait for the file system's journal (up to
 * milliseconds while others fsync), which must not stall the event loop. Read-only calls (open
 * an existing file, fstat, close) are synchronous: they never wait for the journal, and a
 * thread-pool round trip costs more than they do.
 */
export async function atomicCopy(source: string, target: string, options: AtomicCopyOptions = {}): Promise<number> {
  if (options.mkdir) await fs.mkdir(path.dirname(target), { recursive: true, mode: options.private ? 0o700 : 0o777 });
  const temp = options.tempName ? path.join(path.dirname(target), options.tempName) : tempSiblingName(target);
  await options.onTemporaryName?.(temp);
  try {
    await fs.copyFile(source, temp);
    if (options.private) await fs.chmod(temp, 0o600);
    if (options.mtime) await fs.utimes(temp, options.mtime, options.mtime);
    if (options.sync ?? true) await syncFile(temp);
    const { size } = fsSync.statSync(temp);
    options.signal?.throwIfAborted();
    await fs.rename(temp, target);
    return size;
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
}

/** fsyncs a file; false when it is gone. */
export async function syncFile(file: string): Promise<boolean> {
  let fd: number;
  try {
    fd = fsSync.openSync(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  try {
    await fsync(fd);
    return true;
  } finally {
    fsSync.closeSync(fd);
  }
}
