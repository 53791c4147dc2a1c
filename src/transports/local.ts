/** `local`: copies into a folder. The zero-setup transport, and the reference implementation. */
import { constants, existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { LocalTransportConfig } from '../config/schema.js';
import { atomicCopy } from '../shared/atomicCopy.js';
import { PushtaskError, errorMessage } from '../shared/errors.js';
import { forEachChunk, readRange } from '../shared/fileRange.js';
import { confinedLocalDir, confinedLocalPath } from './remotePath.js';
import { remoteTempName } from './tempNames.js';
import type { AppendRequest, RemoteAppender, RemoteEntry, RemoteFolderProbe, Transport, TransportCapabilities, TransportContext, UploadRequest, UploadResult } from './types.js';

/** One folder on this machine: append, list, read; parallel copies would only compete for the disk. */
export const LOCAL_CAPABILITIES: TransportCapabilities = { append: true, list: true, read: true, maxLanes: 1, probesUnconnected: true };

export class LocalTransport implements Transport {
  readonly description: string;
  readonly #dir: string;
  readonly #context: Partial<TransportContext>;

  constructor(config: LocalTransportConfig, context: Partial<TransportContext> = {}) {
    this.#dir = config.dir;
    this.#context = context;
    this.description = `local folder ${config.dir}`;
  }

  async connect(): Promise<void> {
    try {
      await fs.mkdir(this.#dir, { recursive: true });
    } catch (error) {
      throw new PushtaskError('CONNECT_FAILED', `Cannot create destination folder ${this.#dir}: ${errorMessage(error)}`, {
        cause: error,
      });
    }
    // Temporary files of copies a crashed agent was in the middle of (a failed copy removes its own).
    const { strays, logger } = this.#context;
    if (strays && logger) await strays.removeWith((temp) => fs.rm(temp, { force: true }), logger, this.description);
  }

  async upload(request: UploadRequest): Promise<UploadResult> {
    const target = confinedLocalPath(this.#dir, request.remotePath);
    request.signal.throwIfAborted();
    try {
      const bytes = await atomicCopy(request.localPath, target, {
        mtime: request.mtime,
        mkdir: true,
        signal: request.signal,
        // Stable per (agent, file): the next upload of the file replaces a crash's leftover.
        tempName: path.posix.basename(remoteTempName(request.remotePath, this.#context.agentTag)),
        ...(request.onTemporaryName && { onTemporaryName: request.onTemporaryName }),
      });
      return { bytes };
    } catch (error) {
      throw new PushtaskError('UPLOAD_FAILED', `Copy to ${target} failed: ${errorMessage(error)}`, { cause: error });
    }
  }

  async close(): Promise<void> {}

  readonly append: RemoteAppender = {
    size: async (remotePath) => {
      const target = confinedLocalPath(this.#dir, remotePath);
      try {
        return (await fs.stat(target)).size;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw new PushtaskError('UPLOAD_FAILED', `Cannot read the size of ${target}: ${errorMessage(error)}`, { cause: error });
      }
    },
    read: async (remotePath, start, length) => {
      const target = confinedLocalPath(this.#dir, remotePath);
      try {
        return await readRange(target, start, length);
      } catch (error) {
        throw new PushtaskError('UPLOAD_FAILED', `Cannot read ${target}: ${errorMessage(error)}`, { cause: error });
      }
    },
    write: (request) => this.#appendTo(request),
  };

  async #appendTo(request: AppendRequest): Promise<void> {
    const target = confinedLocalPath(this.#dir, request.remotePath);
    request.signal.throwIfAborted();
    try {
      const handle = await fs.open(target, 'r+');
      try {
        const shift = request.remoteSize - request.localStart;
        await forEachChunk(request.localPath, request.localStart, async (chunk, offset) => {
          request.signal.throwIfAborted();
          for (let written = 0; written < chunk.length; ) {
            const { bytesWritten } = await handle.write(chunk, written, chunk.length - written, shift + offset + written);
            if (bytesWritten === 0) throw new Error('no byte could be written (disk full?)');
            written += bytesWritten;
          }
        });
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.utimes(target, request.mtime, request.mtime);
    } catch (error) {
      throw new PushtaskError('UPLOAD_FAILED', `Appending to ${target} failed: ${errorMessage(error)}`, { cause: error });
    }
  }

  async list(remoteDir: string, signal: AbortSignal): Promise<RemoteEntry[]> {
    const dir = confinedLocalDir(this.#dir, remoteDir);
    signal.throwIfAborted();
    try {
      const names = await fs.readdir(dir);
      const entries: RemoteEntry[] = [];
      for (const name of names) {
        // A file removed between readdir and lstat is simply no longer there.
        const stats = await fs.lstat(`${dir}/${name}`).catch(() => null);
        if (!stats) continue;
        const kind = stats.isFile() ? 'file' : stats.isDirectory() ? 'dir' : 'other';
        entries.push({ name, kind, size: stats.size, mtime: stats.mtime });
      }
      return entries;
    } catch (error) {
      throw new PushtaskError('REMOTE_READ_FAILED', `Cannot list ${dir}: ${errorMessage(error)}`, { cause: error });
    }
  }

  /** No connect() needed (it would create the folder): the nearest existing folder decides. */
  async probe(signal: AbortSignal): Promise<RemoteFolderProbe> {
    signal.throwIfAborted();
    let dir = this.#dir;
    const names = await fs.readdir(dir).catch(() => null);
    while (!existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
    const writable = await fs.access(dir, constants.W_OK).then(
      () => true,
      () => false,
    );
    const missing = names === null;
    const detail = `${missing ? `the nearest existing folder, ${dir},` : dir} is ${writable ? '' : 'NOT '}writable by this user`;
    return { folder: missing ? 'missing' : 'exists', ...(names ? { entries: names.length } : {}), writable, detail };
  }

  async read(remotePath: string, maxBytes: number, signal: AbortSignal): Promise<Buffer> {
    const file = confinedLocalPath(this.#dir, remotePath);
    signal.throwIfAborted();
    try {
      const { size } = await fs.stat(file);
      if (size > maxBytes) throw new Error(`it holds ${size} bytes, more than the ${maxBytes} expected`);
      return await fs.readFile(file, { signal });
    } catch (error) {
      throw new PushtaskError('REMOTE_READ_FAILED', `Cannot read ${file}: ${errorMessage(error)}`, { cause: error });
    }
  }
}
