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
import { startTcpProxy, type TcpProxy } from '../helpers/tcpProxy.js';
import { createWorkspace, sha256, testConfig, waitForIdle, type Workspace } from '../helpers/workspace.js';

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
});
