/**
 * The start-up sweep: no incomplete multipart upload of ours stays on the server. A journaled
 * append (append.ts) is aborted at once; a journaled upload is left for the next upload of its
 * key to resume (or to abort, if the content changed) unless it is older than STALE_UPLOAD_MS;
 * one whose start was journaled but not its UploadId (a kill or a lost answer right after
 * CreateMultipartUpload) is found by its key and aborted at once; other unjournaled ones under our
 * prefix that were started more than STALE_UPLOAD_MS ago are aborted too: a lost spool, a crashed
 * peer.
 * Servers bill incomplete uploads' parts.
 */
import { errorMessage } from '../../shared/errors.js';
import { abortUpload, abortUploadsOfKey, listUploads } from './multipart.js';
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
    if (entry.creating) {
      aborted += await abortUploadsOfKey(session, entry.key, signal);
      await session.journal.remove(entry.bucket, entry.key);
      continue;
    }
    const live = !entry.append && now - Date.parse(entry.created) < STALE_UPLOAD_MS;
    journaled.set(entry.uploadId, live);
    if (!live) {
      await abortUpload(session, entry, signal);
      aborted += 1;
    }
  }
  let kept = 0;
  for (const upload of await listUploads(session, session.prefix ? `${session.prefix}/` : '', signal)) {
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

/** The sweep never blocks a connection: a failure is logged and tried again at the next start. */
export async function sweepQuietly(session: S3Session, signal: AbortSignal): Promise<void> {
  try {
    await sweepIncompleteUploads(session, signal);
  } catch (error) {
    if (!signal.aborted) session.logger.warn(`Sweeping incomplete multipart uploads failed: ${errorMessage(error)}`);
  }
}
