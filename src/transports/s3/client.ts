/**
 * The S3 client of one agent, built from the config: credentials (keys, or the SDK's default
 * chain with `profile`), endpoint and addressing, timeouts, and checksums only where required.
 */
import http from 'node:http';
import https from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import type { S3TransportConfig } from '../../config/schema.js';

export interface S3ClientOptions {
  /** Sockets per client: file lanes × parts in flight, plus reads. */
  maxSockets: number;
  /**
   * How long a TCP connect may take, and a socket may stay silent mid-request, before the
   * request fails: config `link.stallTimeoutMs`, so a silent drop costs what it costs on the
   * other transports.
   */
  stallMs: number;
}

export function createS3Client(config: S3TransportConfig, options: S3ClientOptions): S3Client {
  // The SDK warns on Node 20 that its releases after January 2027 need Node 22; package.json pins
  // a release that runs on every Node pushtask supports, so the warning would only alarm users.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const agent = { keepAlive: true, maxSockets: options.maxSockets };
  const client = new S3Client({
    // An S3-compatible server ignores the region but signatures need one.
    region: config.region ?? (config.endpoint ? 'us-east-1' : undefined),
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    // Compatible servers rarely have wildcard DNS for virtual-hosted buckets: path style there.
    forcePathStyle: config.forcePathStyle ?? config.endpoint !== undefined,
    ...(config.accessKeyId && config.secretAccessKey
      ? { credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey, ...(config.sessionToken ? { sessionToken: config.sessionToken } : {}) } }
      : {}),
    ...(config.profile ? { profile: config.profile } : {}),
    // The SDK's default CRC32 trailers (2025) break Ceph 16, older MinIO, B2 and R2: every body
    // carries Content-MD5 instead (set by us), as rclone does for non-AWS providers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // The uploader's retry schedule decides (and honours the server's hints); a multipart upload
    // resumes from its journal, so a failed part costs one part, not the file.
    maxAttempts: 1,
    // The SDK sends bodies of 2 MiB or more (our parts) with `Expect: 100-continue`, a round trip
    // per part spent waiting for the server's go-ahead; credentials were proven at connect.
    expectContinueHeader: false,
    // The SDK builds its NodeHttpHandler from these.
    requestHandler: {
      connectionTimeout: options.stallMs,
      socketTimeout: options.stallMs,
      httpAgent: new http.Agent(agent),
      httpsAgent: new https.Agent(agent),
    },
  });
  client.middlewareStack.add(
    (next) => (args) => {
      signUnsignedIfMd5(args.request);
      return next(args);
    },
    { step: 'build', name: 'pushtaskSignMd5BodiesUnsigned' },
  );
  return client;
}

/**
 * Every body pushtask sends carries a Content-MD5, which the signature covers and the server
 * checks against the bytes it got. The SDK's SHA-256 of the same bytes for the signature would be
 * a second pass over every byte (0.7 s of CPU per GiB on an x86 with SHA instructions, more on a
 * Raspberry Pi, which has none) that guards nothing more: such requests are signed as
 * UNSIGNED-PAYLOAD, as streamed bodies (`bandwidthLimit`) always are.
 */
function signUnsignedIfMd5(request: unknown): void {
  const headers = (request as { headers?: Record<string, string> }).headers;
  if (headers && Object.keys(headers).some((name) => name.toLowerCase() === 'content-md5')) {
    headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
  }
}

/** `s3://bucket/prefix (endpoint)`: for logs and errors, never a secret. */
export function describeS3(config: S3TransportConfig): string {
  const prefix = keyPrefix(config.remoteDir);
  return `s3://${config.bucket}/${prefix}${config.endpoint ? ` at ${safeOrigin(config.endpoint)}` : config.region ? ` (${config.region})` : ''}`;
}

/** `remoteDir` as a key prefix: no leading or trailing '/', '.' and '' both mean the bucket's root. */
export function keyPrefix(remoteDir: string): string {
  return remoteDir
    .split('/')
    .filter((part) => part !== '' && part !== '.')
    .join('/');
}

function safeOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'a custom endpoint';
  }
}
