/**
 * Single-request object operations: PutObject of a whole body (with Content-MD5, checked against
 * the ETag), HEAD, ranged GET and listing one "folder" level.
 */
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type HeadObjectCommandOutput } from '@aws-sdk/client-s3';
import { PushtaskError } from '../../shared/errors.js';
import type { RemoteEntry } from '../types.js';
import { isNotFound } from './errors.js';
import { causeCode, objectMatches } from './multipart.js';
import { mtimeMetadata, MTIME_METADATA_KEY, parseMtime } from './mtime.js';
import { bareEtag, isMd5Etag, md5 } from './parts.js';
import type { S3Session } from './session.js';

export interface PutOptions {
  /** Only replace the object if it still has this ETag (where the server honours If-Match). */
  ifMatch?: string;
}

export async function putWhole(session: S3Session, key: string, body: Buffer, mtime: Date, signal: AbortSignal, options: PutOptions = {}): Promise<void> {
  const digest = md5(body);
  const answer = await session.call(`Upload of ${key}`, 'UPLOAD_FAILED', signal, (abortSignal) =>
    session.client.send(
      new PutObjectCommand({
        Bucket: session.bucket,
        Key: key,
        Body: session.body(body, abortSignal),
        ContentLength: body.length,
        ContentMD5: digest.toString('base64'),
        Metadata: mtimeMetadata(mtime),
        ...(options.ifMatch ? { IfMatch: options.ifMatch } : {}),
      }),
      { abortSignal },
    ),
  );
  const etag = bareEtag(answer.ETag);
  if (isMd5Etag(etag)) {
    if (etag !== digest.toString('hex')) {
      throw new PushtaskError('UPLOAD_FAILED', `Upload of ${key}: the server stored ETag ${etag}, not the MD5 ${digest.toString('hex')} of the ${body.length} bytes sent`);
    }
  } else if (!(await objectMatches(session, key, body.length, '', signal))) {
    throw new PushtaskError('UPLOAD_FAILED', `Upload of ${key}: the server holds another size than the ${body.length} bytes sent`);
  }
}

/** HEAD, or null when the object does not exist. */
export async function headObject(session: S3Session, key: string, signal: AbortSignal): Promise<HeadObjectCommandOutput | null> {
  try {
    return await session.call(`Reading the size of ${key}`, 'REMOTE_READ_FAILED', signal, (abortSignal) =>
      session.client.send(new HeadObjectCommand({ Bucket: session.bucket, Key: key }), { abortSignal }),
    );
  } catch (error) {
    if (isNotFound((error as { cause?: unknown }).cause ?? error)) return null;
    throw error;
  }
}

/** Bytes [start, start + length) of an object (fewer only if it is shorter); also its total size. */
export async function getRange(session: S3Session, key: string, start: number, length: number, signal: AbortSignal): Promise<{ data: Buffer; total: number | undefined }> {
  if (length <= 0) return { data: Buffer.alloc(0), total: undefined };
  const what = `Reading bytes ${start}–${start + length} of ${key}`;
  return session.call(what, 'REMOTE_READ_FAILED', signal, async (abortSignal) => {
    let answer;
    try {
      answer = await session.client.send(new GetObjectCommand({ Bucket: session.bucket, Key: key, Range: `bytes=${start}-${start + length - 1}` }), { abortSignal });
    } catch (error) {
      // A range past the end of an object: nothing there.
      if (causeCode(error) === 'InvalidRange') return { data: Buffer.alloc(0), total: undefined };
      throw error;
    }
    const data = Buffer.from(await answer.Body!.transformToByteArray());
    const total = /\/(\d+)$/.exec(answer.ContentRange ?? '')?.[1];
    return { data: data.subarray(0, length), total: total !== undefined ? Number(total) : answer.ContentLength };
  });
}

/**
 * One level below `prefix` (ending in '/', or '' for the root). Files get LastModified as their
 * mtime; heartbeats (small, few) get a HEAD for the X-Amz-Meta-Mtime pushtask stored, which is
 * the client's clock when it wrote the heartbeat.
 */
export async function listLevel(session: S3Session, prefix: string, signal: AbortSignal, exactMtime: (name: string) => boolean): Promise<RemoteEntry[]> {
  const entries: RemoteEntry[] = [];
  let token: string | undefined;
  do {
    const page = await session.call(`Listing s3://${session.bucket}/${prefix}`, 'REMOTE_READ_FAILED', signal, (abortSignal) =>
      session.client.send(
        new ListObjectsV2Command({ Bucket: session.bucket, Prefix: prefix, Delimiter: '/', ...(token ? { ContinuationToken: token } : {}) }),
        { abortSignal },
      ),
    );
    for (const common of page.CommonPrefixes ?? []) {
      const name = (common.Prefix ?? '').slice(prefix.length).replace(/\/$/, '');
      if (name) entries.push({ name, kind: 'dir', size: 0, mtime: new Date(Number.NaN) });
    }
    for (const object of page.Contents ?? []) {
      const name = (object.Key ?? '').slice(prefix.length);
      // A zero-byte "folder marker" some tools create is not a file.
      if (!name || name.includes('/')) continue;
      entries.push({ name, kind: 'file', size: object.Size ?? 0, mtime: object.LastModified ?? new Date(Number.NaN) });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  await Promise.all(
    entries
      .filter((entry) => entry.kind === 'file' && exactMtime(entry.name))
      .map(async (entry) => {
        const head = await headObject(session, `${prefix}${entry.name}`, signal);
        const stored = parseMtime(head?.Metadata?.[MTIME_METADATA_KEY]);
        if (stored) entry.mtime = stored;
      }),
  );
  return entries;
}
