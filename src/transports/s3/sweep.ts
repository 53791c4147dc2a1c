/**
 * The start-up sweep: no incomplete multipart upload of ours stays on the server. A journaled
 * append (append.ts) is aborted at once; a journaled upload is left for the next upload of its
 * key to resume (or to abort, if the content changed) unless it is older than STALE_UPLOAD_MS;
 * unjournaled ones under our prefix that were started more than STALE_UPLOAD_MS ago are aborted
 * too: a kill between CreateMultipartUpload and the journal write, a lost spool, a crashed peer.
 * Servers bill incomplete uploads' parts.
 */
import { ListMultipartUploadsCommand, type MultipartUpload } from '@aws-sdk/client-s3';
import { errorMessage } from '../../shared/errors.js';
import { abortUpload } from './multipart.js';
import type { S3Session } from './session.js';

/** No upload of ours runs this long; an unjournaled one this old was left by a crash. */
export const STALE_UPLOAD_MS = 24 * 3600 * 1000;

export interface SweepResult {
  aborted: number;
  kept: number;
}

export async function sweepIncompleteUploads(session: S3Session, signal: AbortSignal, now = Date.now()): Promise<SweepResult> {
  const journaled = new Map<string, boolean>();
  let aborted = 0;
  for (const entry of await session.journal.all()) {
    if (entry.bucket !== session.bucket) continue;
    const live = !entry.append && now - Date.parse(entry.created) < STALE_UPLOAD_MS;
    journaled.set(entry.uploadId, live);
    if (!live) {
      await abortUpload(session, entry, signal);
      aborted += 1;
    }
  }
  let kept = 0;
  for (const upload of await listUploads(session, signal)) {
    if (!upload.UploadId || !upload.Key || journaled.has(upload.UploadId)) {
      if (upload.UploadId && journaled.get(upload.UploadId)) kept += 1;
      continue;
    }
    const started = upload.Initiated?.getTime() ?? 0;
    if (now - started < STALE_UPLOAD_MS) continue;
    await abortUpload(session, { bucket: session.bucket, key: upload.Key, uploadId: upload.UploadId }, signal);
    aborted += 1;
  }
  if (aborted > 0) session.logger.info(`Aborted ${aborted} incomplete multipart upload(s) left under ${session.where.description}`);
  return { aborted, kept };
}

async function listUploads(session: S3Session, signal: AbortSignal): Promise<MultipartUpload[]> {
  const uploads: MultipartUpload[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const page = await session.call(`Listing incomplete uploads in ${session.where.description}`, 'CONNECT_FAILED', signal, (abortSignal) =>
      session.client.send(
        new ListMultipartUploadsCommand({
          Bucket: session.bucket,
          ...(session.prefix ? { Prefix: `${session.prefix}/` } : {}),
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

/** The sweep never blocks a connection: a failure is logged and tried again at the next start. */
export async function sweepQuietly(session: S3Session, signal: AbortSignal): Promise<void> {
  try {
    await sweepIncompleteUploads(session, signal);
  } catch (error) {
    if (!signal.aborted) session.logger.warn(`Sweeping incomplete multipart uploads failed: ${errorMessage(error)}`);
  }
}
