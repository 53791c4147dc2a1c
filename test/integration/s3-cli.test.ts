/**
 * The CLI on S3 against Ceph RGW (test/helpers/ceph.ts): `pushtask monitor` lists and reads the
 * heartbeats an agent uploaded, using the client's clock kept in X-Amz-Meta-Mtime;
 * `pushtask watch --dry-run` checks bucket, prefix and write permission without leaving anything.
 */
import fs from 'node:fs';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ClientReport } from '../../src/monitor/heartbeats.js';
import { TaskMaster } from '../../src/index.js';
import { cephUnavailable, sharedCeph, type CephCluster } from '../helpers/ceph.js';
import { runCli } from '../helpers/cli.js';
import { createTestBucket, incompleteUploads, listObjects, objectMetadata, testS3Client, waitForRemote } from '../helpers/s3.js';
import { createWorkspace, testConfig, type Workspace } from '../helpers/workspace.js';

const skipReason = cephUnavailable();
if (skipReason) console.warn(`Skipping the s3 CLI tests against Ceph: ${skipReason}`);

describe.skipIf(skipReason !== null)('pushtask monitor and watch --dry-run on S3 (Ceph RGW)', { timeout: 120_000 }, () => {
  let ceph: CephCluster;
  let s3: S3Client;
  let ws: Workspace;
  let master: TaskMaster | null = null;

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
    ws?.cleanup();
  });

  /** A config file whose secret comes from the environment, as a user would write it. */
  function configFile(name: string, bucket: string, extra = ''): string {
    ws.write(
      name,
      `export default { ${extra} transport: { type: 's3', bucket: '${bucket}', remoteDir: 'fleet', endpoint: '${ceph.endpoint}',
        accessKeyId: '${ceph.accessKeyId}', secretAccessKey: process.env.TEST_S3_SECRET } };\n`,
    );
    return name;
  }
  const env = () => ({ ...process.env, TEST_S3_SECRET: ceph.secretAccessKey });

  it('monitor lists the heartbeats an agent uploaded and shows the client online, by the mtime it kept', async () => {
    ws = createWorkspace('pushtask-s3-cli-');
    const bucket = await createTestBucket(s3);
    ws.write('drop/.keep', '');
    master = new TaskMaster(
      testConfig({
        watch: [{ dir: 'drop' }],
        transport: { type: 's3', bucket, remoteDir: 'fleet', endpoint: ceph.endpoint, accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey },
        heartbeat: { intervalSec: 30, name: 'field-pc' },
      }),
      { cwd: ws.dir },
    );
    await master.start();
    await waitForRemote(async () => (await listObjects(s3, bucket)).some((o) => o.Key === 'fleet/field-pc.heartbeat'), 'the heartbeat');
    const stored = Number((await objectMetadata(s3, bucket, 'fleet/field-pc.heartbeat')).mtime) * 1000;

    const run = await runCli(['monitor', '--config', configFile('monitor.config.ts', bucket), '--json'], { cwd: ws.dir, env: env() });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as { clients: ClientReport[] };
    const client = report.clients.find((c) => c.client === 'field-pc');
    expect(client).toMatchObject({ state: 'online', graceSec: 40, file: 'field-pc.heartbeat' });
    expect(Date.parse(client!.lastSeen!)).toBe(stored);
    expect(run.stdout).not.toContain(ceph.secretAccessKey);
  });

  it('watch --dry-run checks bucket, prefix and write permission, leaving nothing behind', async () => {
    ws = createWorkspace('pushtask-s3-cli-');
    const bucket = await createTestBucket(s3);
    ws.write('drop/a.csv', 'x\n');
    const ok = await runCli(['watch', '--config', configFile('good.config.ts', bucket, "watch: [{ dir: 'drop' }],"), '--dry-run'], { cwd: ws.dir, env: env() });
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`may write under s3://${bucket}/fleet`);
    expect(await listObjects(s3, bucket)).toEqual([]);
    expect(await incompleteUploads(s3, bucket)).toEqual([]);

    const missing = await runCli(['watch', '--config', configFile('bad.config.ts', 'pt-no-such-bucket', "watch: [{ dir: 'drop' }],"), '--dry-run'], { cwd: ws.dir, env: env() });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('the bucket pt-no-such-bucket does not exist');
    expect(missing.stderr + missing.stdout).not.toContain(ceph.secretAccessKey);
    expect(fs.existsSync(ws.path('drop/upload'))).toBe(false);
  });
});
