/**
 * What the S3 modules share on one connection: the client, the bucket and key prefix, the
 * journal, and `call()`, which runs one request with the operation's AbortSignal and turns its
 * failure into a PushtaskError naming the destination.
 */
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import type { BandwidthLimiter } from '../../shared/bandwidth.js';
import type { PushtaskErrorCode } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { meteredBuffer } from '../../shared/meteredStream.js';
import { joinRemote } from '../remotePath.js';
import { describeS3Error, type S3Where } from './errors.js';
import type { MultipartJournal } from './journal.js';

/** What the transports of one agent (one per upload lane) learn together. */
export class S3Shared {
  /** Whether the server copies parts (UploadPartCopy); unknown until an append tries. */
  copySupported: boolean | undefined;
  /** How the server wants If-Match spelled (conditional.ts); unknown until first used. */
  ifMatchStyle: 'quoted' | 'bare' | 'none' | undefined;
  /** The start-up sweep, once per agent. */
  sweep: Promise<void> | undefined;
}

export class S3Session {
  readonly client: S3Client;
  readonly bucket: string;
  /** Key prefix without a trailing '/' ('' = the bucket's root). */
  readonly prefix: string;
  readonly where: S3Where;
  readonly journal: MultipartJournal;
  readonly logger: Logger;
  readonly shared: S3Shared;
  /** The agent's `bandwidthLimit`, or null. */
  readonly bandwidth: BandwidthLimiter | null;

  constructor(values: {
    client: S3Client;
    bucket: string;
    prefix: string;
    where: S3Where;
    journal: MultipartJournal;
    logger: Logger;
    shared: S3Shared;
    bandwidth?: BandwidthLimiter | null;
  }) {
    this.client = values.client;
    this.bucket = values.bucket;
    this.prefix = values.prefix;
    this.where = values.where;
    this.journal = values.journal;
    this.logger = values.logger;
    this.shared = values.shared;
    this.bandwidth = values.bandwidth ?? null;
  }

  /**
   * A request body as it should leave: the buffer itself, or with `bandwidthLimit` set a stream
   * that releases it 16 KiB at a time as the agent's shared bucket allows (its length is given
   * as ContentLength; the SDK then signs it as UNSIGNED-PAYLOAD, the Content-MD5 still guards it).
   */
  body(bytes: Buffer, signal: AbortSignal): Buffer | Readable {
    return this.bandwidth ? meteredBuffer(bytes, this.bandwidth, signal) : bytes;
  }

  /** The object key of a path below the prefix (checked: it can never leave the prefix). */
  key(remotePath: string): string {
    return joinRemote(this.prefix, remotePath);
  }

  /** The key prefix of a folder below the prefix, with its trailing '/' ('' = the bucket's root). */
  folderPrefix(remoteDir: string): string {
    const folder = remoteDir === '' || remoteDir === '.' ? this.prefix : this.key(remoteDir);
    return folder === '' ? '' : `${folder}/`;
  }

  async call<T>(what: string, failCode: PushtaskErrorCode, signal: AbortSignal, request: (abortSignal: AbortSignal) => Promise<T>): Promise<T> {
    signal.throwIfAborted();
    try {
      return await request(signal);
    } catch (error) {
      throw describeS3Error(error, this.where, what, failCode, signal);
    }
  }
}
