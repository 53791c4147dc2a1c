/** The s3 transport's public face; the rest of the folder is its parts. */
export { S3Transport, type S3TransportOptions, S3_PART_BYTES, S3_PART_CONCURRENCY, S3_WHOLE_MAX_BYTES } from './transport.js';
export { S3Shared } from './session.js';

import type { TransportCapabilities } from '../types.js';

/**
 * Objects grow by server-side copy (append.ts), buckets list and objects read (the monitor); HTTP
 * connections are cheap to open in parallel, so `transfers` decides the lanes.
 */
export const S3_CAPABILITIES: TransportCapabilities = { append: true, list: true, read: true, maxLanes: 64 };
