/**
 * Fewer round trips for small SFTP deliveries and appends (issue 16). On a 100 ms link each
 * request that waits for the answer before the next costs 100 ms; these helpers send the requests
 * that do not depend on each other's answers together.
 *
 * - A *spare* (OpenSSH only): after each upload into the remote folder, the next temporary file is opened ahead
 *   of time (off the delivery path), so the next small delivery needs no OPEN round trip. Its name
 *   is stable per agent spool, server and lane (`.pushtask-spare.<id>.pushtask-tmp`): after a
 *   crash the next process opens (truncates) the same empty file again, so crashes do not pile up
 *   strays; close() removes it.
 * - On servers that run the requests of one connection in order (OpenSSH's sftp-server, which is
 *   single-threaded), WRITEs, FSETSTAT and CLOSE go out together; elsewhere FSETSTAT and CLOSE wait
 *   for the WRITEs' answers, as a server may run requests concurrently. The rename always waits
 *   for all of them: a server runs it even after a WRITE failed (a full disk), and a partial file
 *   must never replace the target.
 * - Appends on in-order servers: `size()` sends STAT and a speculative OPEN of the same file
 *   together; the `write()` that follows uses that handle and sends its WRITEs, FSETSTAT, FSTAT and
 *   CLOSE at once, and FSTAT's size is the check the uploader otherwise asks for with one more STAT.
 * Every WRITE is issued in offset order.
 */
import { createHash } from 'node:crypto';
import type { SFTPWrapper, Stats } from 'ssh2';
import type SftpClient from 'ssh2-sftp-client';
import { isTempName } from '../shared/atomicCopy.js';
import { isOpenSshVersion } from './openssh.js';

/** SSH_FXF flags for OPEN as ssh2 spells them. */
type OpenFlags = 'w' | 'r+';

export function callback<T>(start: (done: (error?: Error | null, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => start((error, value) => (error ? reject(error) : resolve(value as T))));
}

/** OpenSSH's sftp-server handles one request after the other, in the order they came. */
export function runsRequestsInOrder(client: SftpClient): boolean {
  return isOpenSshVersion((client as unknown as { client?: { _remoteVer?: unknown } }).client?._remoteVer);
}

/** The largest WRITE the server takes (ssh2 learnt it from `limits@openssh.com`, else 32 KiB). */
function maxWriteOf(sftp: SFTPWrapper): number {
  return Math.max(1024, (sftp as unknown as { _maxWriteLen?: number })._maxWriteLen ?? 32_768);
}

/** Sends `data` as WRITEs from `position`, in offset order, all at once. */
function writeAll(sftp: SFTPWrapper, handle: Buffer, data: Buffer, position: number): Promise<void>[] {
  const maxWrite = maxWriteOf(sftp);
  const writes: Promise<void>[] = [];
  for (let offset = 0; offset < data.length; offset += maxWrite) {
    const length = Math.min(maxWrite, data.length - offset);
    writes.push(callback<void>((done) => sftp.write(handle, data, offset, length, position + offset, done)));
  }
  return writes;
}

/**
 * A small file's bytes into an open temporary file, then its mtime, then CLOSE. With `inOrder`
 * one round trip, else two. A server without FSETSTAT (or one that closed first) gets SETSTAT by path.
 */
export async function putSmallOnHandle(sftp: SFTPWrapper, handle: Buffer, data: Buffer, temp: string, seconds: number, inOrder: boolean): Promise<void> {
  const uncork = corked(sftp);
  const writes = Promise.allSettled(writeAll(sftp, handle, data, 0));
  if (!inOrder) {
    uncork();
    await writes;
  }
  const again = inOrder ? uncork : corked(sftp);
  const timed = settle(callback<void>((done) => sftp.futimes(handle, seconds, seconds, done)));
  const closed = settle(callback<void>((done) => sftp.close(handle, done)));
  again();
  const [writeOutcomes, timedOutcome, closedOutcome] = await Promise.all([writes, timed, closed]);
  for (const outcome of [...writeOutcomes, closedOutcome]) if (outcome.status === 'rejected') throw outcome.reason;
  if (timedOutcome.status === 'rejected') await callback<void>((done) => sftp.utimes(temp, seconds, seconds, done));
}

/**
 * Holds the connection's socket writes until the returned function runs: the packets issued in
 * between leave in one system call instead of one each (a 100 KiB file is four channel packets
 * plus FSETSTAT and CLOSE; on loopback each write costs the kernel's whole receive path).
 */
export function corked(sftp: SFTPWrapper): () => void {
  const socket = (sftp as unknown as { _client?: { _sock?: { cork?(): void; uncork?(): void } } })._client?._sock;
  socket?.cork?.();
  let done = false;
  return () => {
    if (done) return;
    done = true;
    socket?.uncork?.();
  };
}

function settle<T>(promise: Promise<T>): Promise<PromiseSettledResult<T>> {
  return promise.then(
    (value) => ({ status: 'fulfilled', value }),
    (reason: unknown) => ({ status: 'rejected', reason }),
  );
}

export function openFile(sftp: SFTPWrapper, path: string, flags: OpenFlags): Promise<Buffer> {
  return callback<Buffer>((done) => sftp.open(path, flags, done));
}

/** Closes a handle nobody waits for; a failure only means the connection is gone. */
function closeQuietly(sftp: SFTPWrapper, handle: Promise<Buffer | null>): void {
  void handle.then((open) => {
    if (!open) return;
    try {
      sftp.close(open, () => undefined);
    } catch {
      // The channel is closed: so is the handle.
    }
  });
}

/** A stable spare name per spool, server, folder and lane (see the module comment). */
const slotsByKey = new Map<string, number>();
const SPARE_PREFIX = '.pushtask-spare.';
export function spareName(dir: string, key: string): string {
  const slot = slotsByKey.get(key) ?? 0;
  slotsByKey.set(key, slot + 1);
  const id = createHash('sha256').update(key).digest('hex').slice(0, 10);
  return `${dir === '.' ? '' : `${dir.replace(/\/+$/, '')}/`}${SPARE_PREFIX}${id}-${slot}.pushtask-tmp`;
}

/** A spare file's name (the last path segment): a running agent keeps one open per lane. */
export function isSpareName(name: string): boolean {
  return name.startsWith(SPARE_PREFIX) && isTempName(name);
}

/** The one temporary file a transport keeps open ahead of its next small upload. */
export class Spare {
  readonly path: string;
  /** The open handle while the spare is ready (null: opening failed); undefined: none prepared. */
  #handle: Promise<Buffer | null> | undefined;

  constructor(path: string) {
    this.path = path;
  }

  /**
   * Opens the spare (truncating a leftover of an earlier process), unless it is open already.
   * True when this call sent the OPEN.
   */
  prepare(sftp: SFTPWrapper): boolean {
    if (this.#handle) return false;
    try {
      this.#handle = openFile(sftp, this.path, 'w').catch(() => null);
      return true;
    } catch {
      this.#handle = undefined; // the channel is closing
      return false;
    }
  }

  /** Lets go of a prepared spare without waiting: its handle is closed when it arrives. */
  release(sftp: SFTPWrapper): void {
    const handle = this.#handle;
    this.#handle = undefined;
    if (handle) closeQuietly(sftp, handle);
  }

  /** The prepared handle, once: the caller writes into `path` and renames it away. */
  async take(): Promise<Buffer | null> {
    const handle = this.#handle;
    this.#handle = undefined;
    return handle ? handle : null;
  }

  /** Closes and removes the spare over a connection that is still usable (close(), dead time). */
  async discard(sftp: SFTPWrapper): Promise<void> {
    const handle = await this.take();
    if (!handle) return;
    await Promise.allSettled([callback<void>((done) => sftp.close(handle, done)), callback<void>((done) => sftp.unlink(this.path, done))]);
  }

  /** The connection is gone: forget the handle. True if a spare file was open (it stays on the server). */
  forget(): boolean {
    const had = this.#handle !== undefined;
    this.#handle = undefined;
    return had;
  }
}

/**
 * Appends on in-order servers: the handle `size()` opened alongside its STAT, kept for the
 * `write()` to the same file that usually follows at once.
 */
export class AppendHandles {
  #open: { target: string; handle: Promise<Buffer | null> } | null = null;

  /** STAT and OPEN (read-write, no create) together; the size, or null when there is no such file. */
  async sizeAndOpen(sftp: SFTPWrapper, target: string): Promise<Stats> {
    this.release(sftp);
    const handle = openFile(sftp, target, 'r+').catch(() => null);
    this.#open = { target, handle };
    return callback<Stats>((done) => sftp.stat(target, done));
  }

  /** The handle opened for `target`, if the last size() was for it; any other is closed. */
  async take(sftp: SFTPWrapper, target: string): Promise<Buffer | null> {
    const open = this.#open;
    this.#open = null;
    if (!open) return null;
    if (open.target === target) return open.handle;
    closeQuietly(sftp, open.handle);
    return null;
  }

  /** Closes a handle that no write() used (the uploader read the tail, or replaced the file). */
  release(sftp: SFTPWrapper): void {
    const open = this.#open;
    this.#open = null;
    if (open) closeQuietly(sftp, open.handle);
  }

  forget(): void {
    this.#open = null;
  }
}

/**
 * Writes `data` at `position` of an open file and sets the mtime, then reads the size back and
 * closes, all at once (in-order servers only). Returns the size after the write.
 */
export async function appendOnHandle(sftp: SFTPWrapper, handle: Buffer, data: Buffer, position: number, seconds: number): Promise<number> {
  const writes = writeAll(sftp, handle, data, position);
  const timed = callback<void>((done) => sftp.futimes(handle, seconds, seconds, done));
  const stats = settle(callback<Stats>((done) => sftp.fstat(handle, done)));
  const closed = callback<void>((done) => sftp.close(handle, done));
  const outcomes = await Promise.allSettled([...writes, timed, closed]);
  for (const outcome of outcomes) if (outcome.status === 'rejected') throw outcome.reason;
  const size = await stats;
  if (size.status === 'rejected') throw size.reason;
  return size.value.size;
}
