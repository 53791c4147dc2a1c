/** The transport registry: the only place that knows which `type` maps to which module. */
import type { TransportConfig } from '../config/schema.js';
import { DropboxTransport } from './dropbox.js';
import { FtpTransport } from './ftp.js';
import { LocalTransport } from './local.js';
import { SftpTransport } from './sftp.js';
import type { Transport, TransportContext } from './types.js';

export function createTransport(config: TransportConfig, context: TransportContext): Transport {
  switch (config.type) {
    case 'local':
      return new LocalTransport(config);
    case 'sftp':
      return new SftpTransport(config, context);
    case 'ftp':
      return new FtpTransport(config, context);
    case 'dropbox':
      return new DropboxTransport(config, context);
  }
}

export type { Transport, TransportContext, UploadRequest, UploadResult } from './types.js';
export { safeRemotePath, joinRemote, confinedLocalPath } from './remotePath.js';
