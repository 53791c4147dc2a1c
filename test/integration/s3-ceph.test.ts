/**
 * The s3 transport against Ceph's RADOS Gateway (a real distributed S3 engine, test/helpers/ceph.ts;
 * installed by .ci/run, so these tests must run in CI). One cluster serves every test file of a
 * run; each test gets its own bucket.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TaskMaster } from '../../src/index.js';
import type { UploadFailedEvent } from '../../src/master/events.js';
import { cephUnavailable, sharedCeph, type CephCluster } from '../helpers/ceph.js';
import {
  createTestBucket,
  incompleteUploads,
  listObjects,
  objectBytes,
  objectMetadata,
  objectSha256,
  s3TransportConfig,
  testS3Client,
  waitForRemote,
} from '../helpers/s3.js';
import { startS3Gateway } from '../helpers/s3Gateway.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcpProxy.js';
import { createWorkspace, sha256, testConfig, waitFor, waitForIdle, type Workspace } from '../helpers/workspace.js';

const skipReason = cephUnavailable();
if (skipReason) console.warn(`Skipping the s3-against-Ceph tests: ${skipReason}`);

const MiB = 1024 * 1024;

describe.skipIf(skipReason !== null)('s3 transport against Ceph RGW', { timeout: 180_000 }, () => {
  let ceph: CephCluster;
  let s3: S3Client;
  let ws: Workspace;
  let master: TaskMaster | null = null;
  const cleanups: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    ceph = await sharedCeph();
    s3 = testS3Client(ceph);
  }, 120_000);
  afterAll(async () => {
    s3?.destroy();
    await ceph?.stop();
  });
  afterEach(async () => {
    await master?.stop();
    master = null;
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    ws?.cleanup();
  });

  async function proxy(): Promise<TcpProxy> {
    const started = await startTcpProxy(ceph.port);
    cleanups.push(() => started.close());
    return started;
  }

  function randomFile(relative: string, bytes: number): string {
    const file = ws.path(relative);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const handle = fs.openSync(file, 'w');
    for (let done = 0; done < bytes; done += 16 * MiB) fs.writeSync(handle, randomBytes(Math.min(16 * MiB, bytes - done)));
    fs.closeSync(handle);
    return file;
  }

  it('delivers 0-byte, small and 200 MiB files byte-identical, with the mtime as rclone stores it', async () => {
    ws = createWorkspace('pushtask-s3-');
    const bucket = await createTestBucket(s3);
    ws.write('drop/empty.bin', '');
    ws.write('drop/sub/small.csv', 'a,b\n1,2\n');
    randomFile('drop/big.bin', 200 * MiB);
    const mtime = new Date('2026-03-04T05:06:07.891Z');
    fs.utimesSync(ws.path('drop/sub/small.csv'), mtime, mtime);
    master = new TaskMaster(testConfig({ watch: [{ dir: 'drop', stableMs: 50 }], transport: s3TransportConfig(ceph, bucket) }), { cwd: ws.dir });
    await master.start();
    await waitForRemote(async () => (await listObjects(s3, bucket)).length === 3, 'three objects', 120_000);
    expect(await objectBytes(s3, bucket, 'site-7/empty.bin')).toEqual(Buffer.alloc(0));
    expect((await objectBytes(s3, bucket, 'site-7/sub/small.csv'))?.toString()).toBe('a,b\n1,2\n');
    expect(await objectSha256(s3, bucket, 'site-7/big.bin')).toBe(sha256(ws.path('drop/big.bin')));
    expect(await objectMetadata(s3, bucket, 'site-7/sub/small.csv')).toEqual({ mtime: '1772600767.891' });
    await waitForIdle(master.config.spoolDir);
    expect(await incompleteUploads(s3, bucket)).toEqual([]);
  });

  /** Bytes of the parts the killed agent's journal records as acknowledged. */
  function journaledBytes(spoolDir: string): number {
    const dir = path.join(spoolDir, 's3-multipart');
    let bytes = 0;
    // write-file-atomic's temporary files (`<name>.json.<n>`) may be half-written: only whole entries.
    for (const name of fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.endsWith('.json')) : []) {
      const entry = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as { parts: Record<string, { size: number }> };
      for (const part of Object.values(entry.parts)) bytes += part.size;
    }
    return bytes;
  }

  it('resumes a multipart upload after kill -9, sending only the parts the server lacks', async () => {
    ws = createWorkspace('pushtask-s3-');
    const bucket = await createTestBucket(s3);
    const link = await proxy();
    const size = 200 * MiB;
    randomFile('drop/big.bin', size);
    const config = testConfig({ watch: [{ dir: 'drop', stableMs: 50 }], transport: s3TransportConfig(ceph, bucket, {}, link.port), retry: { quickTries: 3, quickDelayMs: 100, longDelayMs: 500 } });
    master = new TaskMaster(config, { cwd: ws.dir });
    await master.start();
    const spoolDir = master.config.spoolDir;
    // Killed once four of the thirteen 16 MiB parts are journaled (others are in flight then).
    await waitFor(() => journaledBytes(spoolDir) >= 64 * MiB, 'four parts acknowledged', 120_000);
    process.kill(master.subtaskPid!, 'SIGKILL');
    await master.stop();
    master = null;
    const kept = journaledBytes(spoolDir);
    expect(kept).toBeGreaterThanOrEqual(64 * MiB);
    expect(await incompleteUploads(s3, bucket)).toHaveLength(1);
    expect(await listObjects(s3, bucket)).toEqual([]);

    link.resetCounters();
    master = new TaskMaster(config, { cwd: ws.dir });
    await master.start();
    await waitForRemote(async () => (await listObjects(s3, bucket)).length === 1, 'the object', 120_000);
    expect(await objectSha256(s3, bucket, 'site-7/big.bin')).toBe(sha256(ws.path('drop/big.bin')));
    const resent = link.bytesUp;
    // Only the parts not journaled as acknowledged travel again, plus requests' headers.
    expect(resent).toBeGreaterThanOrEqual(size - kept);
    expect(resent).toBeLessThan(size - kept + 1 * MiB);
    expect(fs.readFileSync(master.config.log.subtaskFile, 'utf8')).toContain('Resuming the multipart upload of site-7/big.bin');
    await waitForIdle(spoolDir);
    expect(await incompleteUploads(s3, bucket)).toEqual([]);
  });

  it('connections cut mid-part leave only complete objects, and no incomplete uploads once delivered', async () => {
    ws = createWorkspace('pushtask-s3-');
    const bucket = await createTestBucket(s3);
    const link = await proxy();
    randomFile('drop/big.bin', 48 * MiB);
    for (let i = 0; i < 5; i += 1) randomFile(`drop/small-${i}.bin`, 3 * MiB);
    const expected = new Map(fs.readdirSync(ws.path('drop')).map((name) => [`site-7/${name}`, sha256(ws.path(`drop/${name}`))]));
    // Every connection dies after 2 MiB: parts of 16 MiB and 3 MiB objects never get through.
    link.cutUpstreamAfter(2 * MiB);
    master = new TaskMaster(
      testConfig({ watch: [{ dir: 'drop', stableMs: 50 }], transport: s3TransportConfig(ceph, bucket, {}, link.port), retry: { quickTries: 100, quickDelayMs: 100, longDelayMs: 100 } }),
      { cwd: ws.dir },
    );
    const failures: UploadFailedEvent[] = [];
    master.on('upload-failed', (event) => failures.push(event));
    await master.start();
    await waitFor(() => failures.length >= 6, 'failed tries', 60_000);
    expect(await listObjects(s3, bucket)).toEqual([]);
    link.cutUpstreamAfter(null);
    // While uploads complete, whatever is listed is whole.
    await waitForRemote(async () => {
      const objects = await listObjects(s3, bucket);
      for (const object of objects) expect(object.Size).toBe(fs.statSync(ws.path(`drop/${object.Key!.slice('site-7/'.length)}`)).size);
      return objects.length === expected.size;
    }, 'every object', 120_000);
    for (const [key, hash] of expected) expect(await objectSha256(s3, bucket, key)).toBe(hash);
    await waitForIdle(master.config.spoolDir);
    expect(await incompleteUploads(s3, bucket)).toEqual([]);
  });

  it('append mode grows a 6 MiB object on the server: only the appended bytes travel', async () => {
    ws = createWorkspace('pushtask-s3-');
    const bucket = await createTestBucket(s3);
    const link = await proxy();
    randomFile('data/log.csv', 6 * MiB);
    master = new TaskMaster(testConfig({ watch: [{ file: 'data/log.csv', mode: 'append' }], transport: s3TransportConfig(ceph, bucket, {}, link.port) }), { cwd: ws.dir });
    await master.start();
    master.notify('data/log.csv');
    const key = 'site-7/log.csv';
    const delivered = async () => (await objectSha256(s3, bucket, key)) === sha256(ws.path('data/log.csv'));
    await waitForRemote(delivered, 'the first upload');
    link.resetCounters();
    let appended = 0;
    for (let i = 0; i < 5; i += 1) {
      const rows = randomBytes(100_000).toString('base64').slice(0, 100_000 + i);
      ws.append('data/log.csv', rows);
      appended += rows.length;
      master.notify('data/log.csv');
      await waitForRemote(delivered, `append ${i}`);
    }
    // Each append: HEAD, create, copy, part, complete, HEAD (headers of a few KiB in all).
    expect(link.bytesUp).toBeGreaterThanOrEqual(appended);
    expect(link.bytesUp).toBeLessThan(appended * 1.01 + 5 * 16 * 1024);
    expect(await objectMetadata(s3, bucket, key)).toHaveProperty('mtime');
    await waitForIdle(master.config.spoolDir);
    expect(await incompleteUploads(s3, bucket)).toEqual([]);
  });

  it('sends every body with a Content-MD5 and signed as UNSIGNED-PAYLOAD (one hash per byte), stored byte-identical', async () => {
    ws = createWorkspace('pushtask-s3-');
    const bucket = await createTestBucket(s3);
    const bodies: { method: string; url: string; md5: string | undefined; payloadHash: string | undefined }[] = [];
    const gateway = await startS3Gateway(ceph.port, {
      observe: (request) => {
        if (Number(request.headers['content-length'] ?? 0) > 0) {
          bodies.push({ method: request.method!, url: request.url!, md5: request.headers['content-md5'] as string | undefined, payloadHash: request.headers['x-amz-content-sha256'] as string | undefined });
        }
      },
    });
    cleanups.push(() => gateway.close());
    randomFile('data/small.bin', 100 * 1024);
    randomFile('data/big.bin', 40 * MiB);
    master = new TaskMaster(testConfig({ watch: [{ file: 'data/small.bin' }, { file: 'data/big.bin' }], transport: s3TransportConfig(ceph, bucket, {}, gateway.port) }), { cwd: ws.dir });
    await master.start();
    master.notify('data/small.bin');
    master.notify('data/big.bin');
    for (const name of ['small.bin', 'big.bin']) {
      await waitForRemote(async () => (await objectSha256(s3, bucket, `site-7/${name}`)) === sha256(ws.path(`data/${name}`)), name);
    }
    const puts = bodies.filter((body) => body.method === 'PUT');
    // The small file whole, the big one in parts (40 MiB > the 32 MiB whole-object limit).
    expect(puts.filter((body) => body.url.includes('partNumber=')).length).toBeGreaterThanOrEqual(3);
    expect(puts.filter((body) => !body.url.includes('partNumber=')).length).toBeGreaterThanOrEqual(1);
    for (const body of puts) {
      expect(body.payloadHash, `${body.method} ${body.url}`).toBe('UNSIGNED-PAYLOAD');
      expect(body.md5, `${body.method} ${body.url}`).toMatch(/^[A-Za-z0-9+/]{22}==$/);
    }
  });

  it('append mode on a server without UploadPartCopy uploads whole objects, trying the copy once', async () => {
    ws = createWorkspace('pushtask-s3-');
    const bucket = await createTestBucket(s3);
    const gateway = await startS3Gateway(ceph.port, { refuse: (request) => request.headers['x-amz-copy-source'] !== undefined });
    cleanups.push(() => gateway.close());
    randomFile('data/log.csv', 6 * MiB);
    master = new TaskMaster(testConfig({ watch: [{ file: 'data/log.csv', mode: 'append' }], transport: s3TransportConfig(ceph, bucket, {}, gateway.port) }), { cwd: ws.dir });
    await master.start();
    master.notify('data/log.csv');
    const key = 'site-7/log.csv';
    const delivered = async () => (await objectSha256(s3, bucket, key)) === sha256(ws.path('data/log.csv'));
    await waitForRemote(delivered, 'the first upload');
    for (let i = 0; i < 3; i += 1) {
      ws.append('data/log.csv', `row ${i}\n`.repeat(1000));
      master.notify('data/log.csv');
      await waitForRemote(delivered, `append ${i}`);
    }
    // The first append learnt that the server cannot copy parts; the others did not ask again.
    expect(gateway.refused).toBe(1);
    await waitForIdle(master.config.spoolDir);
    expect(await incompleteUploads(s3, bucket)).toEqual([]);
  });

  it('append mode on a small object uploads it whole, byte-identical', async () => {
    ws = createWorkspace('pushtask-s3-');
    const bucket = await createTestBucket(s3);
    ws.write('data/small.csv', 'header\n');
    master = new TaskMaster(testConfig({ watch: [{ file: 'data/small.csv', mode: 'append' }], transport: s3TransportConfig(ceph, bucket) }), { cwd: ws.dir });
    await master.start();
    for (let i = 0; i < 5; i += 1) {
      ws.append('data/small.csv', `row ${i}\n`);
      master.notify('data/small.csv');
      await waitForRemote(async () => (await objectBytes(s3, bucket, 'site-7/small.csv'))?.toString() === fs.readFileSync(ws.path('data/small.csv'), 'utf8'), `append ${i}`);
    }
  });

  /** The agent's last error as status.json reports it (a failed connect may come before any file is queued). */
  function lastError(spoolDir: string): { code: string; message: string } | null {
    try {
      return (JSON.parse(fs.readFileSync(path.join(spoolDir, 'status.json'), 'utf8')) as { lastError: { code: string; message: string } | null }).lastError;
    } catch {
      return null;
    }
  }

  it('a wrong secret gives one clear error naming endpoint, bucket and key id, never the secret, and no hammering', async () => {
    ws = createWorkspace('pushtask-s3-');
    const bucket = await createTestBucket(s3);
    const link = await proxy();
    ws.write('drop/a.csv', 'x\n');
    const wrongSecret = 'wrong-secret-0123456789abcdef';
    master = new TaskMaster(
      testConfig({
        watch: [{ dir: 'drop', stableMs: 50 }],
        transport: s3TransportConfig(ceph, bucket, { secretAccessKey: wrongSecret }, link.port),
        retry: { quickTries: 5, quickDelayMs: 50, longDelayMs: 60_000 },
      }),
      { cwd: ws.dir },
    );
    await master.start();
    const spoolDir = master.config.spoolDir;
    await waitFor(() => lastError(spoolDir) !== null, 'the first failure');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const log = fs.readFileSync(master.config.log.subtaskFile, 'utf8');
    // One try, then the long wait: no second request within the quick retries' 50 ms.
    expect(log.match(/in a row\)/g)).toHaveLength(1);
    expect(log).toContain('failure 1 in a row). Retrying in 60 s');
    expect(link.connections).toBeLessThanOrEqual(2);
    const error = lastError(spoolDir)!;
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.message).toContain(`127.0.0.1:${link.port}`);
    expect(error.message).toContain(bucket);
    expect(error.message).toContain(ceph.accessKeyId);
    expect(error.message).toContain('SignatureDoesNotMatch');
    expect(error.message).not.toContain(wrongSecret);
    expect(log).not.toContain(wrongSecret);
  });

  it('a missing bucket is a destination error on the long schedule', async () => {
    ws = createWorkspace('pushtask-s3-');
    ws.write('drop/a.csv', 'x\n');
    master = new TaskMaster(
      testConfig({ watch: [{ dir: 'drop', stableMs: 50 }], transport: s3TransportConfig(ceph, 'pt-no-such-bucket'), retry: { quickTries: 5, quickDelayMs: 50, longDelayMs: 60_000 } }),
      { cwd: ws.dir },
    );
    await master.start();
    const spoolDir = master.config.spoolDir;
    await waitFor(() => lastError(spoolDir) !== null, 'the first failure');
    const error = lastError(spoolDir)!;
    expect(error.code).toBe('DESTINATION_REJECTED');
    expect(error.message).toContain('pt-no-such-bucket');
    expect(fs.readFileSync(master.config.log.subtaskFile, 'utf8')).toContain('Retrying in 60 s');
  });
});
