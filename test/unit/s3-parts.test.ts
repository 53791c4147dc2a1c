/** The s3 transport's pure parts: part sizes, ETags, rclone's mtime format, error mapping, config. */
import { S3ServiceException } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { retryDelay } from '../../src/shared/retryPolicy.js';
import { copyRanges } from '../../src/transports/s3/append.js';
import { keyPrefix } from '../../src/transports/s3/client.js';
import { describeS3Error } from '../../src/transports/s3/errors.js';
import { formatMtime, parseMtime } from '../../src/transports/s3/mtime.js';
import { bareEtag, isMd5Etag, MAX_PARTS, md5, multipartEtag, partRanges, partSizeFor } from '../../src/transports/s3/parts.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const where = { description: 's3://logs/site-7 at http://s3.example.org:7480', bucket: 'logs', accessKeyId: 'AKIDEXAMPLE' };

function s3Error(code: string, status: number, headers: Record<string, string> = {}): S3ServiceException {
  const error = new S3ServiceException({ name: code, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status } });
  Object.assign(error, { Code: code, $response: { statusCode: status, headers } });
  return error;
}

describe('s3 part arithmetic', () => {
  it('keeps the preferred part size, grows it in whole MiB to stay under 10,000 parts, caps it at 5 GiB', () => {
    expect(partSizeFor(1 * GiB, 16 * MiB)).toBe(16 * MiB);
    expect(partSizeFor(200 * GiB, 16 * MiB)).toBe(21 * MiB);
    expect(Math.ceil((200 * GiB) / partSizeFor(200 * GiB, 16 * MiB))).toBeLessThanOrEqual(MAX_PARTS);
    expect(partSizeFor(100 * MiB, 1 * MiB)).toBe(5 * MiB);
    expect(partSizeFor(60_000 * GiB, 16 * MiB)).toBe(5 * GiB);
  });

  it('cuts a file into numbered parts, the last one shorter', () => {
    expect(partRanges(40 * MiB, 16 * MiB)).toEqual([
      { number: 1, start: 0, size: 16 * MiB },
      { number: 2, start: 16 * MiB, size: 16 * MiB },
      { number: 3, start: 32 * MiB, size: 8 * MiB },
    ]);
    expect(partRanges(32 * MiB, 16 * MiB)).toHaveLength(2);
  });

  it("computes a multipart object's ETag from its parts' MD5s as S3 does", () => {
    const parts = [Buffer.from('a'), Buffer.from('b')].map((part) => md5(part).toString('hex'));
    // md5(md5('a') ‖ md5('b')) + '-2'
    expect(multipartEtag(parts)).toBe(`${md5(Buffer.concat(parts.map((hex) => Buffer.from(hex, 'hex')))).toString('hex')}-2`);
    expect(bareEtag('"5D41402ABC4B2A76B9719D911017C592"')).toBe('5d41402abc4b2a76b9719d911017c592');
    expect(isMd5Etag('5d41402abc4b2a76b9719d911017c592-12')).toBe(true);
    expect(isMd5Etag('kms-encrypted-etag')).toBe(false);
  });

  it('copies an object for an append in pieces of at most 5 GiB, none of them under 5 MiB', () => {
    expect(copyRanges(6 * MiB)).toEqual([{ start: 0, end: 6 * MiB }]);
    const big = copyRanges(5 * GiB + 1);
    expect(big).toHaveLength(2);
    expect(big.every((range) => range.end - range.start <= 5 * GiB && range.end - range.start >= 5 * MiB)).toBe(true);
    expect(big.at(-1)!.end).toBe(5 * GiB + 1);
  });
});

describe('s3 mtime metadata', () => {
  it("writes Unix seconds with the milliseconds as a fraction and reads rclone's nine decimals", () => {
    expect(formatMtime(new Date('2026-03-04T05:06:07.891Z'))).toBe('1772600767.891');
    expect(formatMtime(new Date('2026-03-04T05:06:07.005Z'))).toBe('1772600767.005');
    expect(formatMtime(new Date(Number.NaN))).toBeUndefined();
    expect(parseMtime('1772600767.891000000')?.toISOString()).toBe('2026-03-04T05:06:07.891Z');
    expect(parseMtime('1772600767')?.toISOString()).toBe('2026-03-04T05:06:07.000Z');
    expect(parseMtime('yesterday')).toBeUndefined();
  });
});

describe('s3 errors', () => {
  it('reports refused credentials as AUTH_FAILED naming endpoint, bucket and key id, on the long schedule', () => {
    const error = describeS3Error(s3Error('SignatureDoesNotMatch', 403), where, 'Upload of site-7/a.csv', 'UPLOAD_FAILED') as Error & { code: string };
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.message).toContain('s3.example.org:7480');
    expect(error.message).toContain('bucket logs');
    expect(error.message).toContain('AKIDEXAMPLE');
    expect(retryDelay({ strategy: 'pysubtask', quickTries: 5, quickDelayMs: 3000, longDelayMs: 30_000, maxDelayMs: 300_000 }, 1, error)).toBe(30_000);
    for (const code of ['AccessDenied', 'InvalidAccessKeyId']) {
      expect((describeS3Error(s3Error(code, 403), where, 'x', 'UPLOAD_FAILED') as { code: string }).code).toBe('AUTH_FAILED');
    }
  });

  it('reports a missing bucket as DESTINATION_REJECTED, also on the long schedule', () => {
    const error = describeS3Error(s3Error('NoSuchBucket', 404), where, 'Connecting', 'CONNECT_FAILED') as Error & { code: string };
    expect(error.code).toBe('DESTINATION_REJECTED');
    expect(retryDelay({ strategy: 'pysubtask', quickTries: 5, quickDelayMs: 3000, longDelayMs: 30_000, maxDelayMs: 300_000 }, 1, error)).toBe(30_000);
  });

  it("treats SlowDown and 503 as throttling with the server's Retry-After, 500 and RequestTimeout as transient", () => {
    const slow = describeS3Error(s3Error('SlowDown', 503, { 'retry-after': '7' }), where, 'x', 'UPLOAD_FAILED') as { code: string; retryAfterMs?: number };
    expect(slow).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 7000 });
    expect((describeS3Error(s3Error('ServiceUnavailable', 503), where, 'x', 'UPLOAD_FAILED') as { code: string }).code).toBe('RATE_LIMITED');
    const internal = describeS3Error(s3Error('InternalError', 500), where, 'x', 'UPLOAD_FAILED') as Error & { code: string };
    expect(internal.code).toBe('UPLOAD_FAILED');
    expect(internal.message).toContain('will retry');
    expect((describeS3Error(s3Error('RequestTimeout', 400), where, 'x', 'UPLOAD_FAILED') as { code: string }).code).toBe('UPLOAD_FAILED');
  });

  it('names the destination for network failures and passes an abort through', () => {
    const refused = describeS3Error(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:7480'), { code: 'ECONNREFUSED' }), where, 'Connecting', 'CONNECT_FAILED') as Error & { code: string };
    expect(refused.code).toBe('CONNECT_FAILED');
    expect(refused.message).toContain('cannot reach s3://logs/site-7');
    // A reset under an upload: the connection is replaced at once (CONNECTION_LOST), not after a retry wait.
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    const lost = describeS3Error(reset, where, 'Upload of site-7/a.csv', 'UPLOAD_FAILED') as Error & { code: string };
    expect(lost.code).toBe('CONNECTION_LOST');
    expect(lost.message).toContain('s3://logs/site-7');
    expect((describeS3Error(reset, where, 'Connecting', 'CONNECT_FAILED') as { code: string }).code).toBe('CONNECT_FAILED');
    const controller = new AbortController();
    const reason = new Error('stopping');
    controller.abort(reason);
    expect(describeS3Error(new Error('aborted'), where, 'x', 'UPLOAD_FAILED', controller.signal)).toBe(reason);
  });
});

describe('s3 config', () => {
  const base = { watch: [{ file: 'a.csv' }] };
  it('takes a bucket with keys, or without keys (the default credential chain), never one key alone', () => {
    expect(configSchema.safeParse({ ...base, transport: { type: 's3', bucket: 'logs', accessKeyId: 'A', secretAccessKey: 'S' } }).success).toBe(true);
    expect(configSchema.safeParse({ ...base, transport: { type: 's3', bucket: 'logs', profile: 'pushtask' } }).success).toBe(true);
    const half = configSchema.safeParse({ ...base, transport: { type: 's3', bucket: 'logs', accessKeyId: 'A' } });
    expect(half.success).toBe(false);
    expect(JSON.stringify(half.error?.issues)).toContain('both `accessKeyId` and `secretAccessKey`');
  });

  it('turns remoteDir into a key prefix without leading or trailing slashes', () => {
    expect(keyPrefix('/site-7/')).toBe('site-7');
    expect(keyPrefix('.')).toBe('');
    expect(keyPrefix('a//b')).toBe('a/b');
  });
});
