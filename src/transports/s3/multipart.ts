/**
 * Multipart uploads that survive cuts, crashes and restarts. Parts go up `concurrency` at a
 * time, each with its Content-MD5; every acknowledged part is journaled (journal.ts). A later try
 * with the same local file asks the server which parts it holds (ListParts) and sends only the
 * rest. The object appears only at CompleteMultipartUpload, whole; then its size and ETag are
 * checked against ours. An upload that cannot be continued (the file changed, the server lost
 * it, a part was refused) is aborted on the server, so no incomplete upload of ours is left.
 */
import fs from 'node:fs/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  type MultipartUpload,
  UploadPartCommand,
  type Part,
} from '@aws-sdk/client-s3';
import { PushtaskError, errorMessage } from '../../shared/errors.js';
import { readAt } from '../../shared/fileRange.js';
import { Slots } from '../../shared/limit.js';
import { s3Code } from './errors.js';
import { type JournalEntry, sameSource, type SourceIdentity } from './journal.js';
import { mtimeMetadata } from './mtime.js';
import { bareEtag, isMd5Etag, md5, multipartEtag, partRanges, type PartRange } from './parts.js';
import type { S3Session } from './session.js';

export interface MultipartRequest {
  localPath: string;
  key: string;
  mtime: Date;
  partSize: number;
  concurrency: number;
  signal: AbortSignal;
  onProgress?: (bytesSent: number) => void;
}

/** The S3 error code behind a PushtaskError (or of a raw SDK error). */
export function causeCode(error: unknown): string | undefined {
  return s3Code(error) ?? s3Code((error as { cause?: unknown } | null)?.cause);
}

/** Failures after which the upload cannot be continued: it is aborted and begun anew next time. */
const BROKEN_UPLOAD_CODES = new Set(['NoSuchUpload', 'InvalidPart', 'InvalidPartOrder', 'EntityTooSmall', 'BadDigest', 'InvalidDigest']);

export async function uploadMultipart(session: S3Session, request: MultipartRequest): Promise<number> {
  const { localPath, key, signal } = request;
  const source: SourceIdentity = { size: (await fs.stat(localPath)).size, mtimeMs: request.mtime.getTime() };
  let entry = await resumable(session, request, source);
  if (!entry) {
    await session.journal.saveIntent(session.bucket, key);
    const created = await session.call(`Starting the multipart upload of ${key}`, 'UPLOAD_FAILED', signal, (abortSignal) =>
      session.client.send(new CreateMultipartUploadCommand({ Bucket: session.bucket, Key: key, Metadata: mtimeMetadata(request.mtime) }), { abortSignal }),
    );
    if (!created.UploadId) throw new PushtaskError('UPLOAD_FAILED', `Starting the multipart upload of ${key}: ${session.where.description} returned no UploadId`);
    entry = { bucket: session.bucket, key, uploadId: created.UploadId, source, partSize: request.partSize, parts: {}, created: new Date().toISOString() };
    await session.journal.save(entry);
  }
  try {
    await sendMissingParts(session, entry, request);
    await complete(session, entry, signal);
  } catch (error) {
    if (!signal.aborted && BROKEN_UPLOAD_CODES.has(causeCode(error) ?? '')) {
      session.logger.warn(`Multipart upload of ${key} cannot be continued (${errorMessage(error)}): aborting it; the next try starts anew`);
      await abortUpload(session, entry, signal);
    }
    throw error;
  }
  await session.journal.remove(session.bucket, key);
  return source.size;
}

/**
 * The journaled upload of this content, with the parts the server holds and our bytes confirm,
 * or null. A journaled upload of other content (an older version of the file) is aborted.
 */
async function resumable(session: S3Session, request: MultipartRequest, source: SourceIdentity): Promise<JournalEntry | null> {
  const entry = await session.journal.load(session.bucket, request.key);
  if (!entry) return null;
  if (entry.creating) {
    // A start whose UploadId never reached the journal: whatever the server began is of no use.
    await abortUpload(session, entry, request.signal);
    return null;
  }
  if (entry.append || !sameSource(entry.source, source) || entry.partSize !== request.partSize) {
    session.logger.info(`Aborting the unfinished multipart upload of ${request.key}: it sent another version of the file`);
    await abortUpload(session, entry, request.signal);
    return null;
  }
  let serverParts: Part[];
  try {
    serverParts = await listParts(session, entry, request.signal);
  } catch (error) {
    if (causeCode(error) !== 'NoSuchUpload') throw error;
    session.logger.info(`The server no longer knows the multipart upload of ${request.key}; starting anew`);
    await session.journal.remove(session.bucket, request.key);
    return null;
  }
  const confirmed: JournalEntry['parts'] = {};
  const ranges = new Map(partRanges(source.size, entry.partSize).map((range) => [range.number, range]));
  const handle = await fs.open(request.localPath, 'r');
  try {
    for (const part of serverParts) {
      const ours = part.PartNumber !== undefined ? entry.parts[String(part.PartNumber)] : undefined;
      const range = ranges.get(part.PartNumber ?? 0);
      // A part counts only if the server holds exactly the bytes we journaled, and they are ours.
      if (!ours || !range || part.Size !== ours.size || ours.size !== range.size || bareEtag(part.ETag) !== ours.md5) continue;
      if (md5(await readAt(handle, range.start, range.size)).toString('hex') === ours.md5) confirmed[String(part.PartNumber)] = ours;
    }
  } finally {
    await handle.close().catch(() => undefined);
  }
  const kept = Object.values(confirmed).reduce((sum, part) => sum + part.size, 0);
  session.logger.info(`Resuming the multipart upload of ${request.key}: ${Object.keys(confirmed).length} parts (${kept} bytes) are on the server already`);
  return { ...entry, parts: confirmed };
}

async function listParts(session: S3Session, entry: JournalEntry, signal: AbortSignal): Promise<Part[]> {
  const parts: Part[] = [];
  let marker: string | undefined;
  for (;;) {
    const page = await session.call(`Listing the parts of ${entry.key}`, 'UPLOAD_FAILED', signal, (abortSignal) =>
      session.client.send(
        new ListPartsCommand({ Bucket: entry.bucket, Key: entry.key, UploadId: entry.uploadId, ...(marker ? { PartNumberMarker: marker } : {}) }),
        { abortSignal },
      ),
    );
    parts.push(...(page.Parts ?? []));
    if (!page.IsTruncated || !page.NextPartNumberMarker) return parts;
    marker = page.NextPartNumberMarker;
  }
}

async function sendMissingParts(session: S3Session, entry: JournalEntry, request: MultipartRequest): Promise<void> {
  const ranges = partRanges(entry.source.size, entry.partSize);
  const missing = ranges.filter((range) => !entry.parts[String(range.number)]);
  let sent = ranges.filter((range) => entry.parts[String(range.number)]).reduce((sum, range) => sum + range.size, 0);
  if (missing.length === 0) return;
  // The first failure stops the rest: parts in flight are cancelled, none is started.
  const stop = new AbortController();
  const signal = AbortSignal.any([request.signal, stop.signal]);
  const slots = new Slots(request.concurrency);
  const handle = await fs.open(request.localPath, 'r');
  try {
    const results = await Promise.allSettled(
      missing.map((range) =>
        slots.run(async () => {
          signal.throwIfAborted();
          try {
            await sendPart(session, entry, handle, range, signal);
          } catch (error) {
            stop.abort(error);
            throw error;
          }
          sent += range.size;
          request.onProgress?.(sent);
        }),
      ),
    );
    const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) throw request.signal.aborted ? (request.signal.reason ?? failed.reason) : stop.signal.reason ?? failed.reason;
  } finally {
    await handle.close().catch(() => undefined);
  }
}

async function sendPart(session: S3Session, entry: JournalEntry, handle: fs.FileHandle, range: PartRange, signal: AbortSignal): Promise<void> {
  const body = await readAt(handle, range.start, range.size);
  const digest = md5(body);
  const answer = await session.call(`Upload of part ${range.number} of ${entry.key}`, 'UPLOAD_FAILED', signal, (abortSignal) =>
    session.client.send(
      new UploadPartCommand({
        Bucket: entry.bucket,
        Key: entry.key,
        UploadId: entry.uploadId,
        PartNumber: range.number,
        Body: session.body(body, abortSignal),
        ContentLength: body.length,
        ContentMD5: digest.toString('base64'),
      }),
      { abortSignal },
    ),
  );
  const etag = bareEtag(answer.ETag);
  if (isMd5Etag(etag) && etag !== digest.toString('hex')) {
    throw new PushtaskError('UPLOAD_FAILED', `Part ${range.number} of ${entry.key}: the server stored ETag ${etag}, not the MD5 ${digest.toString('hex')} of the part`);
  }
  entry.parts[String(range.number)] = { etag: answer.ETag ?? etag, md5: digest.toString('hex'), size: range.size };
  await session.journal.save(entry);
}

/** Completes the upload and checks the object: its size, and its ETag where it is an MD5 one. */
async function complete(session: S3Session, entry: JournalEntry, signal: AbortSignal): Promise<void> {
  const ranges = partRanges(entry.source.size, entry.partSize);
  const parts = ranges.map((range) => {
    const part = entry.parts[String(range.number)];
    if (!part) throw new PushtaskError('UPLOAD_FAILED', `Multipart upload of ${entry.key}: part ${range.number} is missing`);
    return { PartNumber: range.number, ETag: part.etag, md5: part.md5 };
  });
  const expectedEtag = multipartEtag(parts.map((part) => part.md5));
  try {
    await session.call(`Completing the multipart upload of ${entry.key}`, 'UPLOAD_FAILED', signal, (abortSignal) =>
      session.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: entry.bucket,
          Key: entry.key,
          UploadId: entry.uploadId,
          MultipartUpload: { Parts: parts.map(({ PartNumber, ETag }) => ({ PartNumber, ETag })) },
        }),
        { abortSignal },
      ),
    );
  } catch (error) {
    // A completion whose answer was lost (cut connection, kill) is done: the object tells.
    if (causeCode(error) !== 'NoSuchUpload' || !(await objectMatches(session, entry.key, entry.source.size, expectedEtag, signal))) throw error;
    return;
  }
  if (!(await objectMatches(session, entry.key, entry.source.size, expectedEtag, signal))) {
    throw new PushtaskError('UPLOAD_FAILED', `After the multipart upload of ${entry.key} the object differs from the ${entry.source.size} bytes sent; it will be uploaded again`);
  }
}

export async function objectMatches(session: S3Session, key: string, size: number, expectedEtag: string, signal: AbortSignal): Promise<boolean> {
  const head = await session.call(`Checking ${key}`, 'UPLOAD_FAILED', signal, (abortSignal) =>
    session.client.send(new HeadObjectCommand({ Bucket: session.bucket, Key: key }), { abortSignal }),
  );
  const etag = bareEtag(head.ETag);
  return head.ContentLength === size && (!isMd5Etag(etag) || etag === expectedEtag);
}

/**
 * Best effort: the sweep at the next start retries what fails here. For a journaled intent
 * (`creating`, no UploadId known) every incomplete upload of that key is aborted.
 */
export async function abortUpload(session: S3Session, entry: Pick<JournalEntry, 'bucket' | 'key' | 'uploadId' | 'creating'>, signal: AbortSignal): Promise<void> {
  try {
    if (entry.creating) await abortUploadsOfKey(session, entry.key, signal);
    else await abortOne(session, entry.key, entry.uploadId, signal);
  } catch (error) {
    session.logger.warn(`${errorMessage(error)}; the start-up sweep tries again`);
    return;
  }
  await session.journal.remove(entry.bucket, entry.key);
}

/**
 * Aborts every incomplete upload of exactly `key` (a prefix listing also returns longer keys):
 * what a journaled intent may have started. Returns how many.
 */
export async function abortUploadsOfKey(session: S3Session, key: string, signal: AbortSignal): Promise<number> {
  let aborted = 0;
  for (const upload of await listUploads(session, key, signal)) {
    if (upload.Key !== key || !upload.UploadId) continue;
    await abortOne(session, key, upload.UploadId, signal);
    aborted += 1;
  }
  return aborted;
}

/** Aborts one upload; one the server no longer knows counts as aborted. */
async function abortOne(session: S3Session, key: string, uploadId: string, signal: AbortSignal): Promise<void> {
  try {
    await session.call(`Aborting the multipart upload of ${key}`, 'UPLOAD_FAILED', signal, (abortSignal) =>
      session.client.send(new AbortMultipartUploadCommand({ Bucket: session.bucket, Key: key, UploadId: uploadId }), { abortSignal }),
    );
  } catch (error) {
    if (causeCode(error) !== 'NoSuchUpload') throw error;
  }
}

/** The incomplete multipart uploads whose keys start with `prefix`. */
export async function listUploads(session: S3Session, prefix: string, signal: AbortSignal): Promise<MultipartUpload[]> {
  const uploads: MultipartUpload[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const page = await session.call(`Listing incomplete uploads in ${session.where.description}`, 'CONNECT_FAILED', signal, (abortSignal) =>
      session.client.send(
        new ListMultipartUploadsCommand({
          Bucket: session.bucket,
          ...(prefix ? { Prefix: prefix } : {}),
          ...(keyMarker ? { KeyMarker: keyMarker } : {}),
          ...(uploadIdMarker ? { UploadIdMarker: uploadIdMarker } : {}),
        }),
        { abortSignal },
      ),
    );
    uploads.push(...(page.Uploads ?? []));
    if (!page.IsTruncated) return uploads;
    keyMarker = page.NextKeyMarker;
    uploadIdMarker = page.NextUploadIdMarker;
    if (!keyMarker && !uploadIdMarker) return uploads;
  }
}
