/**
 * The transport registry: the only place that knows which `type` maps to which module. Modules
 * are loaded on demand, so an agent only pays (in start time and memory) for the protocol it uses.
 */
import type { TransportConfig } from '../config/schema.js';
import type { Transport, TransportCapabilities, TransportContext } from './types.js';

/** Makes one connection's transport; `capabilities` says what they can do before one exists. */
export type TransportFactory = (() => Transport) & { readonly capabilities: TransportCapabilities };

function factory(create: () => Transport, capabilities: TransportCapabilities): TransportFactory {
  return Object.assign(create, { capabilities });
}

export async function loadTransport(config: TransportConfig, context: TransportContext): Promise<TransportFactory> {
  switch (config.type) {
    case 'local': {
      const { LocalTransport, LOCAL_CAPABILITIES } = await import('./local.js');
      return factory(() => new LocalTransport(config, context), LOCAL_CAPABILITIES);
    }
    case 'sftp': {
      const { SftpTransport, SFTP_CAPABILITIES } = await import('./sftp.js');
      return factory(() => new SftpTransport(config, context), SFTP_CAPABILITIES);
    }
    case 'ftp': {
      const { FtpTransport, FTP_CAPABILITIES } = await import('./ftp.js');
      return factory(() => new FtpTransport(config, context), FTP_CAPABILITIES);
    }
    case 'dropbox': {
      const { DropboxTransport, DROPBOX_CAPABILITIES } = await import('./dropbox.js');
      return factory(() => new DropboxTransport(config, context), DROPBOX_CAPABILITIES);
    }
    case 's3': {
      const { S3Transport, S3Shared, S3_CAPABILITIES } = await import('./s3/index.js');
      // One sweep, one "cannot copy parts" warning per agent, however many upload lanes.
      const shared = new S3Shared();
      return factory(() => new S3Transport(config, context, shared), S3_CAPABILITIES);
    }
  }
}

export type { Transport, TransportCapabilities, TransportContext, UploadRequest, UploadResult } from './types.js';
export { safeRemotePath, joinRemote, confinedLocalPath } from './remotePath.js';
