/** The s3 transport's public face; the rest of the folder is its parts. */
export { S3Transport, type S3TransportOptions, S3_PART_BYTES, S3_PART_CONCURRENCY, S3_WHOLE_MAX_BYTES } from './transport.js';
export { S3Shared } from './session.js';
