/**
 * The start-up sweep of incomplete multipart uploads (src/transports/s3/sweep.ts) against Ceph
 * RGW: journaled appends go at once, a journaled upload stays for its resume until it is 24 h old,
 * unjournaled ones under the prefix go once 24 h old, and nothing outside the prefix is touched;
 * an upload whose start was journaled but not its UploadId (a kill right after
 * CreateMultipartUpload) goes at once, found by its exact key; so does one whose answer was lost,
 * when its upload is tried again.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { CreateMultipartUploadCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3TransportSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/shared/logger.js';
import { MultipartJournal } from '../../src/transports/s3/journal.js';
import { S3Session, S3Shared } from '../../src/transports/s3/session.js';
import { STALE_UPLOAD_MS, sweepIncompleteUploads } from '../../src/transports/s3/sweep.js';
import { S3Transport } from '../../src/transports/s3/transport.js';
import { cephUnavailable, sharedCeph, type CephCluster } from '../helpers/ceph.js';
import { createTestBucket, incompleteUploads, objectSha256, s3TransportConfig, testS3Client } from '../helpers/s3.js';
import { startS3Gateway } from '../helpers/s3Gateway.js';

const skipReason = cephUnavailable();
if (skipReason) console.warn(`Skipping the s3 sweep test against Ceph: ${skipReason}`);

describe.skipIf(skipReason !== null)('s3 start-up sweep against Ceph RGW', { timeout: 120_000 }, () => {
  let ceph: CephCluster;
  let s3: S3Client;
  let stateDir: string;

  beforeAll(async () => {
    ceph = await sharedCeph();
    s3 = testS3Client(ceph);
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-s3-sweep-'));
  }, 120_000);
  afterAll(async () => {
    s3?.destroy();
    await ceph?.stop();
    if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
  });

  function sessionFor(bucket: string, journal: MultipartJournal): S3Session {
    return new S3Session({
      client: s3,
      bucket,
      prefix: 'site-7',
      where: { description: `s3://${bucket}/site-7`, bucket, accessKeyId: ceph.accessKeyId },
      journal,
      logger: silentLogger(),
      shared: new S3Shared(),
    });
  }

  it('aborts journaled appends at once and the rest of ours once stale, never what lies outside the prefix', async () => {
    const bucket = await createTestBucket(s3);
    const start = async (key: string) => (await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))).UploadId!;
    const journal = new MultipartJournal(stateDir);
    const created = new Date().toISOString();
    const source = { size: 100, mtimeMs: 1 };
    const append = await start('site-7/append.csv');
    await journal.save({ bucket, key: 'site-7/append.csv', uploadId: append, source, partSize: 0, parts: {}, created, append: true });
    const resumable = await start('site-7/big.bin');
    await journal.save({ bucket, key: 'site-7/big.bin', uploadId: resumable, source, partSize: 16 << 20, parts: {}, created });
    const unjournaled = await start('site-7/sub/lost.bin');
    const outside = await start('other/theirs.bin');
    const session = sessionFor(bucket, journal);
    const ids = async () => (await incompleteUploads(s3, bucket)).map((upload) => upload.UploadId).sort();

    expect(await sweepIncompleteUploads(session, AbortSignal.timeout(30_000))).toEqual({ aborted: 1, kept: 1 });
    expect(await ids()).toEqual([resumable, unjournaled, outside].sort());
    expect(await journal.load(bucket, 'site-7/append.csv')).toBeNull();

    const dayLater = Date.now() + STALE_UPLOAD_MS + 60_000;
    expect(await sweepIncompleteUploads(session, AbortSignal.timeout(30_000), dayLater)).toEqual({ aborted: 2, kept: 0 });
    expect(await ids()).toEqual([outside]);
    expect(await journal.all()).toEqual([]);
  });

  it('aborts at once what a start journaled without its UploadId may have begun, and only that key', async () => {
    const bucket = await createTestBucket(s3);
    const start = async (key: string) => (await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))).UploadId!;
    const journal = new MultipartJournal(fs.mkdtempSync(path.join(stateDir, 'intent-')));
    // The process died after CreateMultipartUpload, before the UploadId reached the journal.
    await journal.saveIntent(bucket, 'site-7/big.bin');
    await start('site-7/big.bin');
    await start('site-7/big.bin');
    const longerKey = await start('site-7/big.bin.1');
    const session = sessionFor(bucket, journal);

    expect(await sweepIncompleteUploads(session, AbortSignal.timeout(30_000))).toEqual({ aborted: 2, kept: 0 });
    expect((await incompleteUploads(s3, bucket)).map((upload) => upload.UploadId)).toEqual([longerKey]);
    expect(await journal.all()).toEqual([]);
  });

  it('a multipart upload whose start was answered into a cut connection is aborted when the file is tried again', async () => {
    const bucket = await createTestBucket(s3);
    const dir = fs.mkdtempSync(path.join(stateDir, 'lost-answer-'));
    let first = true;
    const gateway = await startS3Gateway(ceph.port, {
      // The server starts the upload; its answer (the UploadId) never reaches the client.
      loseAnswer: (request) => {
        const start = request.method === 'POST' && /[?&]uploads(=|&|$)/.test(request.url ?? '') && first;
        if (start) first = false;
        return start;
      },
    });
    const config = s3TransportSchema.parse(s3TransportConfig(ceph, bucket, {}, gateway.port));
    const transport = new S3Transport(config, { logger: silentLogger(), stateDir: path.join(dir, 'state') }, new S3Shared(), { wholeMaxBytes: 1 << 20, partBytes: 5 << 20 });
    const file = path.join(dir, 'big.bin');
    fs.writeFileSync(file, randomBytes(6 << 20));
    const upload = () => transport.upload({ localPath: file, remotePath: 'big.bin', mtime: new Date(), signal: AbortSignal.timeout(30_000) });
    try {
      await transport.connect(AbortSignal.timeout(30_000));
      await expect(upload()).rejects.toThrow();
      expect(gateway.cut).toBe(1);
      expect(await incompleteUploads(s3, bucket)).toHaveLength(1);

      await transport.connect(AbortSignal.timeout(30_000));
      await upload();
      expect(await objectSha256(s3, bucket, 'site-7/big.bin')).toBe(createHash('sha256').update(fs.readFileSync(file)).digest('hex'));
      expect(await incompleteUploads(s3, bucket)).toEqual([]);
    } finally {
      await transport.close();
      await gateway.close();
    }
  });
});
