/**
 * The transport registry: the only place that knows which `type` maps to which module. Modules
 * are loaded on demand, so an agent only pays (in start time and memory) for the protocol it uses.
 */
import type { TransportConfig } from '../config/schema.js';
import type { Transport, TransportContext } from './types.js';

export type TransportFactory = () => Transport;

export async function loadTransport(config: TransportConfig, context: TransportContext): Promise<TransportFactory> {
  switch (config.type) {
    case 'local': {
      const { LocalTransport } = await import('./local.js');
      return () => new LocalTransport(config, context);
    }
    case 'sftp': {
      const { SftpTransport } = await import('./sftp.js');
      return () => new SftpTransport(config, context);
    }
    case 'ftp': {
      const { FtpTransport } = await import('./ftp.js');
      return () => new FtpTransport(config, context);
    }
    case 'dropbox': {
      const { DropboxTransport } = await import('./dropbox.js');
      return () => new DropboxTransport(config, context);
    }
    case 's3': {
      const { S3Transport, S3Shared } = await import('./s3/index.js');
      // One sweep, one "cannot copy parts" warning per agent, however many upload lanes.
      const shared = new S3Shared();
      return () => new S3Transport(config, context, shared);
    }
  }
}

export type { Transport, TransportContext, UploadRequest, UploadResult } from './types.js';
export { safeRemotePath, joinRemote, confinedLocalPath } from './remotePath.js';
