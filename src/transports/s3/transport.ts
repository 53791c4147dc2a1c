/**
 * `s3`: uploads to a bucket of AWS S3 or an S3-compatible server (Ceph RGW, MinIO, R2, B2, Wasabi)
 * through @aws-sdk/client-s3. Objects only ever appear complete (PutObject and multipart uploads
 * are atomic on S3, so there is no temporary name); every body carries its Content-MD5 and the
 * stored ETag and size are checked. Files above WHOLE_MAX_BYTES go up as resumable multipart
 * uploads (multipart.ts), appends compose on the server (append.ts), and a sweep at the first
 * connection aborts incomplete uploads of ours (sweep.ts).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { S3TransportConfig } from '../../config/schema.js';
import { PushtaskError } from '../../shared/errors.js';
import { HEARTBEAT_SUFFIX } from '../../shared/sidecar.js';
import type { RemoteEntry, Transport, TransportContext, UploadRequest, UploadResult } from '../types.js';
import { S3Appender } from './append.js';
import { createS3Client, describeS3, keyPrefix } from './client.js';
import { LINK_DEFAULTS } from '../lifeline.js';
import { MultipartJournal } from './journal.js';
import { readAt, readSmallFile } from '../../shared/fileRange.js';
import { abortUpload, uploadMultipart } from './multipart.js';
import { getRange, listLevel, putWhole } from './objects.js';
import { partSizeFor } from './parts.js';
import { S3Shared, S3Session } from './session.js';
import { sweepQuietly } from './sweep.js';

const MiB = 1024 * 1024;
/** Files up to this size go up in one PutObject (read into memory); bigger ones as multipart. */
export const S3_WHOLE_MAX_BYTES = 32 * MiB;
/** Files up to this size are read in one synchronous go (spool snapshots, just written). */
const SMALL_READ_BYTES = 256 * 1024;
/** Preferred part size (grown for files above 160 GB to stay under 10,000 parts). */
export const S3_PART_BYTES = 16 * MiB;
/** Parts of one file in flight at once. */
export const S3_PART_CONCURRENCY = 4;

export interface S3TransportOptions {
  /** @default S3_WHOLE_MAX_BYTES */
  wholeMaxBytes?: number;
  /** @default S3_PART_BYTES */
  partBytes?: number;
  /** @default S3_PART_CONCURRENCY */
  partConcurrency?: number;
}

export class S3Transport implements Transport {
  readonly description: string;
  readonly append: S3Appender;
  readonly #config: S3TransportConfig;
  readonly #context: TransportContext;
  readonly #shared: S3Shared;
  readonly #journal: MultipartJournal;
  readonly #wholeMax: number;
  readonly #partBytes: number;
  readonly #partConcurrency: number;
  #session: S3Session | null = null;

  constructor(config: S3TransportConfig, context: TransportContext, shared = new S3Shared(), options: S3TransportOptions = {}) {
    this.#config = config;
    this.#context = context;
    this.#shared = shared;
    this.#journal = new MultipartJournal(context.stateDir);
    this.#wholeMax = options.wholeMaxBytes ?? S3_WHOLE_MAX_BYTES;
    this.#partBytes = options.partBytes ?? S3_PART_BYTES;
    this.#partConcurrency = options.partConcurrency ?? S3_PART_CONCURRENCY;
    this.description = describeS3(config);
    this.append = new S3Appender(() => this.#connected(), {
      wholeMaxBytes: this.#wholeMax,
      partSize: this.#partBytes,
      stateDir: context.stateDir,
      uploadFile: async (localPath, key, mtime, signal) => {
        await this.#uploadKey(this.#connected(), localPath, key, mtime, signal);
      },
    });
  }

  /**
   * A one-key listing proves endpoint, credentials and bucket; the first connection of an
   * agent also sweeps incomplete uploads (never failing the connection for it).
   */
  async connect(signal: AbortSignal): Promise<void> {
    await this.close();
    const client = createS3Client(this.#config, { maxSockets: this.#partConcurrency + 2, stallMs: (this.#context.link ?? LINK_DEFAULTS).stallTimeoutMs });
    const session = new S3Session({
      client,
      bucket: this.#config.bucket,
      prefix: keyPrefix(this.#config.remoteDir),
      where: { description: this.description, bucket: this.#config.bucket, accessKeyId: this.#config.accessKeyId },
      journal: this.#journal,
      logger: this.#context.logger,
      shared: this.#shared,
      bandwidth: this.#context.bandwidth ?? null,
    });
    try {
      await probeBucket(session, signal);
      this.#shared.sweep ??= sweepQuietly(session, signal);
      await this.#shared.sweep;
    } catch (error) {
      client.destroy();
      throw error;
    }
    this.#session = session;
  }

  async upload({ localPath, remotePath, mtime, signal, onProgress }: UploadRequest): Promise<UploadResult> {
    const session = this.#connected();
    const bytes = await this.#uploadKey(session, localPath, session.key(remotePath), mtime, signal, onProgress);
    return { bytes };
  }

  async #uploadKey(session: S3Session, localPath: string, key: string, mtime: Date, signal: AbortSignal, onProgress?: (bytes: number) => void): Promise<number> {
    const cannotRead = (error: unknown) => new PushtaskError('UPLOAD_FAILED', `Cannot read ${localPath}: ${(error as Error).message}`, { cause: error });
    let small: Buffer | null;
    try {
      small = readSmallFile(localPath, SMALL_READ_BYTES);
    } catch (error) {
      throw cannotRead(error);
    }
    if (small) return this.#putWhole(session, key, small, mtime, signal, onProgress);
    const handle = await fs.open(localPath, 'r').catch((error: unknown) => {
      throw cannotRead(error);
    });
    let size: number;
    try {
      size = (await handle.stat()).size;
      if (size <= this.#wholeMax) return await this.#putWhole(session, key, await readAt(handle, 0, size), mtime, signal, onProgress);
    } finally {
      await handle.close().catch(() => undefined);
    }
    return uploadMultipart(session, {
      localPath,
      key,
      mtime,
      partSize: partSizeFor(size, this.#partBytes),
      concurrency: this.#partConcurrency,
      signal,
      ...(onProgress ? { onProgress } : {}),
    });
  }

  async #putWhole(session: S3Session, key: string, body: Buffer, mtime: Date, signal: AbortSignal, onProgress?: (bytes: number) => void): Promise<number> {
    await putWhole(session, key, body, mtime, signal);
    // A multipart upload of an earlier, bigger version of this file, cut off: no longer needed.
    const unfinished = await session.journal.load(session.bucket, key);
    if (unfinished) await abortUpload(session, unfinished, signal);
    onProgress?.(body.length);
    return body.length;
  }

  /** Drops the client and its pooled connections. Journaled multipart uploads stay for the next try. */
  async close(): Promise<void> {
    this.#session?.client.destroy();
    this.#session = null;
  }

  async list(remoteDir: string, signal: AbortSignal): Promise<RemoteEntry[]> {
    const session = this.#connected();
    return listLevel(session, session.folderPrefix(remoteDir), signal, (name) => name.endsWith(HEARTBEAT_SUFFIX));
  }

  async read(remotePath: string, maxBytes: number, signal: AbortSignal): Promise<Buffer> {
    const session = this.#connected();
    const key = session.key(remotePath);
    const { data, total } = await getRange(session, key, 0, maxBytes + 1, signal);
    if (data.length > maxBytes || (total ?? 0) > maxBytes) {
      throw new PushtaskError('REMOTE_READ_FAILED', `Reading ${key}: it holds ${total ?? data.length} bytes, more than the ${maxBytes} expected`);
    }
    return data;
  }

  /**
   * Proves write permission without leaving an object: starts a multipart upload under the
   * prefix and aborts it (`pushtask watch --dry-run`).
   */
  async checkWrite(signal: AbortSignal): Promise<string> {
    const session = this.#connected();
    const key = session.key(`.pushtask-write-check-${randomBytes(6).toString('hex')}`);
    const what = `Checking write permission in ${this.description}`;
    const created = await session.call(what, 'AUTH_FAILED', signal, (abortSignal) =>
      session.client.send(new CreateMultipartUploadCommand({ Bucket: session.bucket, Key: key }), { abortSignal }),
    );
    await session.call(what, 'UPLOAD_FAILED', signal, (abortSignal) =>
      session.client.send(new AbortMultipartUploadCommand({ Bucket: session.bucket, Key: key, UploadId: created.UploadId }), { abortSignal }),
    );
    return `may write under s3://${session.bucket}/${session.prefix}`;
  }

  #connected(): S3Session {
    if (!this.#session) throw new PushtaskError('CONNECT_FAILED', `Not connected to ${this.description}`);
    return this.#session;
  }
}

/**
 * Lists at most one key under the prefix: proves endpoint, credentials, bucket and the list
 * permission that append mode and the monitor need. A GET (unlike HeadBucket) gets an error body,
 * so a refusal says why (SignatureDoesNotMatch, InvalidAccessKeyId, NoSuchBucket, …).
 */
async function probeBucket(session: S3Session, signal: AbortSignal): Promise<void> {
  await session.call('Connecting to S3', 'CONNECT_FAILED', signal, (abortSignal) =>
    session.client.send(new ListObjectsV2Command({ Bucket: session.bucket, MaxKeys: 1, Prefix: session.folderPrefix('') }), { abortSignal }),
  );
}
