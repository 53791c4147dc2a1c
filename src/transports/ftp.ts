/** `ftp` transport: placeholder until its implementation lands. */
import type { FtpTransportConfig } from '../config/schema.js';
import { PushtaskError } from '../shared/errors.js';
import type { Transport, TransportContext, UploadResult } from './types.js';

export class FtpTransport implements Transport {
  readonly description: string;

  constructor(config: FtpTransportConfig, _context: TransportContext) {
    this.description = `ftp transport (${config.remoteDir})`;
  }

  async connect(): Promise<void> {
    throw new PushtaskError('CONNECT_FAILED', 'The ftp transport is not implemented yet');
  }

  async upload(): Promise<UploadResult> {
    throw new PushtaskError('UPLOAD_FAILED', 'The ftp transport is not implemented yet');
  }

  async close(): Promise<void> {}
}
