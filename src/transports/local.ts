/** `local`: copies into a folder. The zero-setup transport, and the reference implementation. */
import fs from 'node:fs/promises';
import type { LocalTransportConfig } from '../config/schema.js';
import { atomicCopy } from '../shared/atomicCopy.js';
import { PushtaskError, errorMessage } from '../shared/errors.js';
import { confinedLocalPath } from './remotePath.js';
import { forEachChunk, readRange } from '../shared/fileRange.js';
import type { AppendRequest, RemoteAppender, Transport, UploadRequest, UploadResult } from './types.js';

export class LocalTransport implements Transport {
  readonly description: string;
  readonly #dir: string;

  constructor(config: LocalTransportConfig) {
    this.#dir = config.dir;
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
  }

  async upload(request: UploadRequest): Promise<UploadResult> {
    const target = confinedLocalPath(this.#dir, request.remotePath);
    request.signal.throwIfAborted();
    try {
      const bytes = await atomicCopy(request.localPath, target, { mtime: request.mtime, mkdir: true, signal: request.signal });
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
}
