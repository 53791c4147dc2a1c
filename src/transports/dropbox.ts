/** `dropbox` transport: placeholder until its implementation lands. */
import type { DropboxTransportConfig } from '../config/schema.js';
import { PushtaskError } from '../shared/errors.js';
import type { Transport, TransportContext, UploadResult } from './types.js';

export class DropboxTransport implements Transport {
  readonly description: string;

  constructor(config: DropboxTransportConfig, _context: TransportContext) {
    this.description = `dropbox transport (${config.remoteDir})`;
  }

  async connect(): Promise<void> {
    throw new PushtaskError('CONNECT_FAILED', 'The dropbox transport is not implemented yet');
  }

  async upload(): Promise<UploadResult> {
    throw new PushtaskError('UPLOAD_FAILED', 'The dropbox transport is not implemented yet');
  }

  async close(): Promise<void> {}
}
