/**
 * Append mode on S3 (SPEC §7), where objects cannot grow in place. An object of 5 MiB or more
 * grows on the server: a multipart upload whose first part(s) are UploadPartCopy of the current
 * object (guarded by its ETag) and whose last part(s) are the new bytes, completed with If-Match on
 * the old ETag where the server honours it. Only the appended bytes travel. A smaller object is
 * read and uploaded whole with the new bytes; so is every object on a server without
 * UploadPartCopy (one warning). The uploader checks the size afterwards (appendUpload.ts).
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { PushtaskError, errorMessage } from '../../shared/errors.js';
import type { AppendRequest, RemoteAppender } from '../types.js';
import { withIfMatch } from './conditional.js';
import { httpStatus } from './errors.js';
import { readAt } from '../../shared/fileRange.js';
import { abortUpload, causeCode } from './multipart.js';
import { mtimeMetadata } from './mtime.js';
import { getRange, headObject, putWhole } from './objects.js';
import { bareEtag, MAX_PART_BYTES, md5, MIN_PART_BYTES, partRanges } from './parts.js';
import type { S3Session } from './session.js';

export interface S3AppenderOptions {
  /** Objects that together with the new bytes fit this are rewritten in one PutObject. */
  wholeMaxBytes: number;
  partSize: number;
  /** A private folder for the rare download-and-reupload fallback. */
  stateDir: string;
  /** Uploads a local file whole to `key` (PutObject or multipart, as for normal uploads). */
  uploadFile(localPath: string, key: string, mtime: Date, signal: AbortSignal): Promise<void>;
}

const COPY_UNSUPPORTED_CODES = new Set(['NotImplemented', 'MethodNotAllowed', 'InvalidRequest']);

export class S3Appender implements RemoteAppender {
  readonly #session: () => S3Session;
  readonly #options: S3AppenderOptions;
  /** ETags seen by `size()`, so `write()` needs no second HEAD. */
  readonly #seen = new Map<string, { size: number; etag: string }>();

  constructor(session: () => S3Session, options: S3AppenderOptions) {
    this.#session = session;
    this.#options = options;
  }

  async size(remotePath: string, signal: AbortSignal): Promise<number | null> {
    const session = this.#session();
    const key = session.key(remotePath);
    const head = await headObject(session, key, signal);
    if (!head) {
      this.#seen.delete(key);
      return null;
    }
    const size = head.ContentLength ?? 0;
    this.#seen.set(key, { size, etag: head.ETag ?? '' });
    return size;
  }

  async read(remotePath: string, start: number, length: number, signal: AbortSignal): Promise<Buffer> {
    const session = this.#session();
    return (await getRange(session, session.key(remotePath), start, length, signal)).data;
  }

  async write(request: AppendRequest): Promise<void> {
    const session = this.#session();
    const key = session.key(request.remotePath);
    const { signal, remoteSize } = request;
    const etag = await this.#etagAt(session, key, remoteSize, signal);
    const addedBytes = (await fs.stat(request.localPath)).size - request.localStart;
    if (remoteSize >= MIN_PART_BYTES && session.shared.copySupported !== false) {
      try {
        await this.#compose(session, key, etag, request, addedBytes);
        session.shared.copySupported = true;
        return;
      } catch (error) {
        if (signal.aborted || session.shared.copySupported === true || !copyUnsupported(error)) throw error;
        session.shared.copySupported = false;
        session.logger.warn(
          `${session.where.description} cannot copy parts (UploadPartCopy: ${errorMessage(error)}): append mode uploads whole objects there from now on`,
        );
      }
    }
    await this.#rewriteWhole(session, key, etag, request, addedBytes);
  }

  /** The ETag of the object as it is now, which must still be `remoteSize` bytes long. */
  async #etagAt(session: S3Session, key: string, remoteSize: number, signal: AbortSignal): Promise<string> {
    const seen = this.#seen.get(key);
    if (seen && seen.size === remoteSize && seen.etag) return seen.etag;
    const head = await headObject(session, key, signal);
    if (!head || head.ContentLength !== remoteSize) {
      throw new PushtaskError('UPLOAD_FAILED', `Append to ${key}: the object changed (now ${head?.ContentLength ?? 'missing'}, expected ${remoteSize} bytes); the next try looks again`);
    }
    return head.ETag ?? '';
  }

  async #compose(session: S3Session, key: string, etag: string, request: AppendRequest, addedBytes: number): Promise<void> {
    const { signal, remoteSize } = request;
    // An unfinished upload of this key (a killed append, an older snapshot) is of no further use.
    const stale = await session.journal.load(session.bucket, key);
    if (stale) await abortUpload(session, stale, signal);
    await session.journal.saveIntent(session.bucket, key);
    const created = await session.call(`Starting the append to ${key}`, 'UPLOAD_FAILED', signal, (abortSignal) =>
      session.client.send(new CreateMultipartUploadCommand({ Bucket: session.bucket, Key: key, Metadata: mtimeMetadata(request.mtime) }), { abortSignal }),
    );
    const uploadId = created.UploadId;
    if (!uploadId) throw new PushtaskError('UPLOAD_FAILED', `Starting the append to ${key}: no UploadId`);
    const entry = { bucket: session.bucket, key, uploadId };
    // Journaled so that a kill leaves nothing behind: the next start's sweep aborts it.
    await session.journal.save({ ...entry, source: { size: remoteSize + addedBytes, mtimeMs: request.mtime.getTime() }, partSize: 0, parts: {}, created: new Date().toISOString(), append: true });
    try {
      const parts: { PartNumber: number; ETag: string }[] = [];
      for (const range of copyRanges(remoteSize)) {
        const number = parts.length + 1;
        const copied = await session.call(`Copying bytes ${range.start}–${range.end} of ${key} into its append`, 'UPLOAD_FAILED', signal, (abortSignal) =>
          session.client.send(
            new UploadPartCopyCommand({
              Bucket: session.bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber: number,
              CopySource: `${session.bucket}/${key.split('/').map(encodeURIComponent).join('/')}`,
              CopySourceRange: `bytes=${range.start}-${range.end - 1}`,
              ...(etag ? { CopySourceIfMatch: etag } : {}),
            }),
            { abortSignal },
          ),
        );
        parts.push({ PartNumber: number, ETag: copied.CopyPartResult?.ETag ?? '' });
      }
      const handle = await fs.open(request.localPath, 'r');
      try {
        for (const range of partRanges(addedBytes, this.#options.partSize)) {
          const number = parts.length + 1;
          const body = await readAt(handle, request.localStart + range.start, range.size);
          const sent = await session.call(`Upload of the appended bytes of ${key}`, 'UPLOAD_FAILED', signal, (abortSignal) =>
            session.client.send(
              new UploadPartCommand({ Bucket: session.bucket, Key: key, UploadId: uploadId, PartNumber: number, Body: session.body(body, abortSignal), ContentLength: body.length, ContentMD5: md5(body).toString('base64') }),
              { abortSignal },
            ),
          );
          parts.push({ PartNumber: number, ETag: sent.ETag ?? '' });
        }
      } finally {
        await handle.close().catch(() => undefined);
      }
      await withIfMatch(session, key, etag, signal, (ifMatch) =>
        session.call(`Completing the append to ${key}`, 'UPLOAD_FAILED', signal, (abortSignal) =>
          session.client.send(
            new CompleteMultipartUploadCommand({ Bucket: session.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts }, ...(ifMatch ? { IfMatch: ifMatch } : {}) }),
            { abortSignal },
          ),
        ),
      );
      await session.journal.remove(session.bucket, key);
    } catch (error) {
      await abortUpload(session, entry, signal.aborted ? AbortSignal.timeout(5000) : signal);
      throw error;
    }
  }

  /** Old bytes + new bytes as one new object (read back from the server: it may be all we have). */
  async #rewriteWhole(session: S3Session, key: string, etag: string, request: AppendRequest, addedBytes: number): Promise<void> {
    const { signal, remoteSize } = request;
    if (remoteSize + addedBytes <= this.#options.wholeMaxBytes) {
      const { data } = await getRange(session, key, 0, remoteSize, signal);
      if (data.length !== remoteSize || (etag && !etagFits(etag, data))) {
        throw new PushtaskError('UPLOAD_FAILED', `Append to ${key}: the object changed while it was read; the next try looks again`);
      }
      const handle = await fs.open(request.localPath, 'r');
      let added: Buffer;
      try {
        added = await readAt(handle, request.localStart, addedBytes);
      } finally {
        await handle.close().catch(() => undefined);
      }
      const body = Buffer.concat([data, added]);
      await withIfMatch(session, key, etag, signal, (ifMatch) => putWhole(session, key, body, request.mtime, signal, ifMatch ? { ifMatch } : {}));
      return;
    }
    const temp = path.join(this.#options.stateDir, `.s3-append-${randomBytes(6).toString('hex')}.tmp`);
    try {
      const answer = await session.call(`Reading ${key} to append to it`, 'UPLOAD_FAILED', signal, (abortSignal) =>
        session.client.send(new GetObjectCommand({ Bucket: session.bucket, Key: key }), { abortSignal }),
      );
      await pipeline(answer.Body as Readable, createWriteStream(temp, { mode: 0o600 }), { signal });
      const held = (await fs.stat(temp)).size;
      if (held !== remoteSize) throw new PushtaskError('UPLOAD_FAILED', `Append to ${key}: read ${held} bytes, expected ${remoteSize}; the next try looks again`);
      const source = await fs.open(request.localPath, 'r');
      try {
        await pipeline(source.createReadStream({ start: request.localStart, autoClose: false }), createWriteStream(temp, { flags: 'a' }), { signal });
      } finally {
        await source.close().catch(() => undefined);
      }
      await this.#options.uploadFile(temp, key, request.mtime, signal);
    } finally {
      await fs.rm(temp, { force: true });
    }
  }
}

/** The current object in pieces of at most 5 GiB, none under 5 MiB (it is ≥ 5 MiB). */
export function copyRanges(size: number): { start: number; end: number }[] {
  const count = Math.ceil(size / MAX_PART_BYTES);
  const piece = Math.ceil(size / count);
  const ranges: { start: number; end: number }[] = [];
  for (let start = 0; start < size; start += piece) ranges.push({ start, end: Math.min(size, start + piece) });
  return ranges;
}

function copyUnsupported(error: unknown): boolean {
  const status = httpStatus((error as { cause?: unknown }).cause ?? error);
  return COPY_UNSUPPORTED_CODES.has(causeCode(error) ?? '') || status === 501 || status === 405;
}

/** A plain-MD5 ETag must match what was read; a multipart one cannot be checked this way. */
function etagFits(etag: string, data: Buffer): boolean {
  const bare = bareEtag(etag);
  return !/^[0-9a-f]{32}$/.test(bare) || bare === md5(data).toString('hex');
}

