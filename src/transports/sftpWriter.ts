/**
 * Writing a local file into an open SFTP handle, pipelined but strictly in order.
 *
 * ssh2's `fastPut` keeps many writes in flight and issues each as soon as its local read returns,
 * so writes reach the server out of order. OpenSSH does not mind; servers that can only append to
 * what they stream into object storage (rclone's `serve sftp` with its default
 * `--vfs-cache-mode off`: "can't seek in file", reported to us as "Illegal seek"; many
 * object-storage gateways likewise) fail every such upload. `writeInOrder` reads the file
 * sequentially and sends each write only after the one before it was sent, keeping
 * `inFlight` of them outstanding: the same pipelining, in the order the server needs.
 *
 * Which servers need it is learnt from the first failure (`isOutOfOrderRefusal`) and remembered
 * per server for the life of the process (`InOrderServers`), with one log line.
 */
import type { SFTPWrapper } from 'ssh2';
import { forEachChunk } from '../shared/fileRange.js';

export interface InOrderWrite {
  localPath: string;
  /** First byte of the local file to send. @default 0 */
  localStart?: number;
  /** Where that byte goes in the remote file. @default 0 */
  remoteOffset?: number;
  /** Writes outstanding at once. */
  inFlight: number;
  signal: AbortSignal;
  /** Called with the bytes acknowledged so far. */
  onProgress?: (bytes: number) => void;
}

/** The largest write the server accepts (ssh2 learns it from `limits@openssh.com`), else 32 KiB. */
export function maxWriteOf(sftp: SFTPWrapper): number {
  return Math.max(1024, (sftp as unknown as { _maxWriteLen?: number })._maxWriteLen ?? 32 * 1024);
}

/** Writes [localStart, end of file) of `localPath` to `handle` in order, `inFlight` writes at a time; returns the bytes written. */
export async function writeInOrder(sftp: SFTPWrapper, handle: Buffer, request: InOrderWrite): Promise<number> {
  const piece = maxWriteOf(sftp);
  const localStart = request.localStart ?? 0;
  const shift = (request.remoteOffset ?? 0) - localStart;
  const writes = new Set<Promise<void>>();
  let failure: unknown = null;
  let acknowledged = 0;
  let sent = 0;
  await forEachChunk(request.localPath, localStart, async (chunk, offset) => {
    for (let at = 0; at < chunk.length; at += piece) {
      if (failure) throw failure;
      request.signal.throwIfAborted();
      const part = chunk.subarray(at, at + piece);
      sent += part.length;
      const write: Promise<void> = new Promise<void>((resolve, reject) =>
        sftp.write(handle, part, 0, part.length, shift + offset + at, (error) => (error ? reject(error) : resolve())),
      ).then(
        () => {
          writes.delete(write);
          acknowledged += part.length;
          request.onProgress?.(acknowledged);
        },
        (error: unknown) => {
          failure ??= error;
          writes.delete(write);
        },
      );
      writes.add(write);
      if (writes.size >= request.inFlight) await Promise.race(writes);
    }
  });
  await Promise.all(writes);
  if (failure) throw failure;
  return sent;
}

/**
 * The server refused a write at an offset it did not expect: rclone answers SSH_FX_FAILURE with
 * "Illegal seek" (ESPIPE); other streaming servers say "seek" or "out of order" in some way.
 */
export function isOutOfOrderRefusal(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /illegal seek|can'?t seek|cannot seek|not seekable|out of order|non-?sequential|ESPIPE/i.test(message);
}

/** Servers (host:port) known to accept writes only in order, learnt at their first refusal. */
export class InOrderServers {
  readonly #servers = new Set<string>();

  has(server: string): boolean {
    return this.#servers.has(server);
  }

  /** Records the server; true the first time (the caller logs it once). */
  learn(server: string): boolean {
    if (this.#servers.has(server)) return false;
    this.#servers.add(server);
    return true;
  }
}

/** One registry per process: every connection (lane) to a server learns from the first refusal. */
export const inOrderServers = new InOrderServers();
