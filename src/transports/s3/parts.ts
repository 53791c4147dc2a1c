/** Part arithmetic and digests of S3 multipart uploads (pure, unit-tested). */
import { createHash } from 'node:crypto';

const MiB = 1024 * 1024;
/** S3's limits: at most 10,000 parts, each 5 MiB to 5 GiB except the last. */
export const MAX_PARTS = 10_000;
export const MIN_PART_BYTES = 5 * MiB;
export const MAX_PART_BYTES = 5 * 1024 * MiB;

/** The part size for a file: `preferred`, grown (in whole MiB) until the file fits in 10,000 parts. */
export function partSizeFor(size: number, preferred: number): number {
  const needed = Math.ceil(size / MAX_PARTS / MiB) * MiB;
  return Math.min(MAX_PART_BYTES, Math.max(preferred, MIN_PART_BYTES, needed));
}

export interface PartRange {
  /** 1-based, as S3 counts. */
  number: number;
  start: number;
  size: number;
}

export function partRanges(size: number, partSize: number): PartRange[] {
  const ranges: PartRange[] = [];
  for (let start = 0, number = 1; start < size || number === 1; start += partSize, number += 1) {
    ranges.push({ number, start, size: Math.min(partSize, size - start) });
    if (size === 0) break;
  }
  return ranges;
}

export function md5(data: Uint8Array): Buffer {
  return createHash('md5').update(data).digest();
}

/** The ETag S3 gives a multipart object: MD5 of the parts' binary MD5s, then `-<count>`. */
export function multipartEtag(partMd5sHex: readonly string[]): string {
  const hash = createHash('md5');
  for (const hex of partMd5sHex) hash.update(Buffer.from(hex, 'hex'));
  return `${hash.digest('hex')}-${partMd5sHex.length}`;
}

/** An ETag without its quotes, lower case. */
export function bareEtag(etag: string | undefined): string {
  return (etag ?? '').replace(/^W\//, '').replace(/"/g, '').toLowerCase();
}

/** Whether an ETag is a plain MD5 or a multipart one (not so with SSE-KMS or SSE-C on AWS). */
export function isMd5Etag(etag: string): boolean {
  return /^[0-9a-f]{32}(-\d+)?$/.test(etag);
}
