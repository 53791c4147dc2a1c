/** `sftp` transport: placeholder until its implementation lands. */
import type { SftpTransportConfig } from '../config/schema.js';
import { PushtaskError } from '../shared/errors.js';
import type { Transport, TransportContext, UploadResult } from './types.js';

export class SftpTransport implements Transport {
  readonly description: string;

  constructor(config: SftpTransportConfig, _context: TransportContext) {
    this.description = `sftp transport (${config.remoteDir})`;
  }

  async connect(): Promise<void> {
    throw new PushtaskError('CONNECT_FAILED', 'The sftp transport is not implemented yet');
  }

  async upload(): Promise<UploadResult> {
    throw new PushtaskError('UPLOAD_FAILED', 'The sftp transport is not implemented yet');
  }

  async close(): Promise<void> {}
}
