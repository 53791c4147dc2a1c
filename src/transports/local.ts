/** `local`: copies into a folder. The zero-setup transport, and the reference implementation. */
import fs from 'node:fs/promises';
import type { LocalTransportConfig } from '../config/schema.js';
import { atomicCopy } from '../shared/atomicCopy.js';
import { PushtaskError, errorMessage } from '../shared/errors.js';
import { confinedLocalPath } from './remotePath.js';
import type { Transport, UploadRequest, UploadResult } from './types.js';

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
}
