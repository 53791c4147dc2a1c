/** The transport registry: the only place that knows which `type` maps to which module. */
import type { TransportConfig } from '../config/schema.js';
import { LocalTransport } from './local.js';
import type { Transport, TransportContext } from './types.js';

export function createTransport(config: TransportConfig, _context: TransportContext): Transport {
  switch (config.type) {
    case 'local':
      return new LocalTransport(config);
  }
}

export type { Transport, TransportContext, UploadRequest, UploadResult } from './types.js';
export { safeRemotePath, joinRemote, confinedLocalPath } from './remotePath.js';
