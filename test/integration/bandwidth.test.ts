/**
 * `bandwidthLimit` reaches every network transport: each one takes the bytes it sends from the
 * agent's shared limiter before they leave (real servers on loopback; the limiter's clock is a
 * recording fake, so nothing actually waits and the check is exact, not timed). The achieved rate
 * on a real link is measured by bench/link.ts.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { dropboxTransportSchema, ftpTransportSchema, s3TransportSchema, sftpTransportSchema } from '../../src/config/schema.js';
import { startEmbeddedSftpServer } from '../../src/embedded/sftpServer.js';
import { BandwidthLimiter, parseBandwidthLimit, type BandwidthClock } from '../../src/shared/bandwidth.js';
import { DropboxTransport } from '../../src/transports/dropbox.js';
import { FtpTransport } from '../../src/transports/ftp.js';
import { S3Transport } from '../../src/transports/s3/transport.js';
import { S3Shared } from '../../src/transports/s3/session.js';
import { SftpTransport } from '../../src/transports/sftp.js';
import type { Transport } from '../../src/transports/types.js';
import { cephUnavailable, sharedCeph } from '../helpers/ceph.js';
import { FAKE_APP_KEY, FakeDropbox } from '../helpers/fakeDropbox.js';
import { startFtpServer } from '../helpers/ftpServer.js';
import { createTestBucket, objectBytes, s3TransportConfig, testS3Client } from '../helpers/s3.js';
import { createWorkspace, type Workspace } from '../helpers/workspace.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const RATE = 100 * KiB;

let ws: Workspace;
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  ws?.cleanup();
});

/** A limiter at 100 KiB/s whose clock moves only by the waits it asks for. */
function recordingLimiter(): { limiter: BandwidthLimiter; slept: () => number } {
  let now = Date.now();
  let slept = 0;
  const clock: BandwidthClock = {
    now: () => now,
    sleep: async (ms) => {
      slept += ms;
      now += ms;
    },
  };
  return { limiter: new BandwidthLimiter(parseBandwidthLimit(RATE), clock), slept: () => slept };
}

/** Uploads 1 MiB and 5 KiB, appends 64 KiB where the transport can: returns the bytes sent. */
async function exercise(transport: Transport, dir: string): Promise<number> {
  const signal = AbortSignal.timeout(60_000);
  await transport.connect(signal);
  cleanups.push(() => transport.close());
  const big = `${dir}/big.bin`;
  const small = `${dir}/small.csv`;
  fs.writeFileSync(big, randomBytes(MiB));
  fs.writeFileSync(small, randomBytes(5 * KiB));
  await transport.upload({ localPath: big, remotePath: 'big.bin', mtime: new Date(), signal });
  await transport.upload({ localPath: small, remotePath: 'small.csv', mtime: new Date(), signal });
  let sent = MiB + 5 * KiB;
  if (transport.append) {
    fs.appendFileSync(small, randomBytes(64 * KiB));
    await transport.append.write({ localPath: small, localStart: 5 * KiB, remotePath: 'small.csv', remoteSize: 5 * KiB, mtime: new Date(), signal });
    sent += 64 * KiB;
  }
  return sent;
}

/** The limiter asked the sender to wait as long as `sent` bytes take at the rate (less the first burst, 16 KiB). */
function expectPaced(slept: number, sent: number, slack = 0): void {
  const expected = ((sent - 16 * KiB) / RATE) * 1000;
  expect(slept).toBeGreaterThanOrEqual(expected - 50);
  expect(slept).toBeLessThanOrEqual(expected * (1 + slack) + 50);
}

describe('bandwidthLimit reaches every network transport', () => {
  it('sftp: every WRITE (small burst, fastPut, append) waits for the shared bucket', async () => {
    ws = createWorkspace();
    const server = await startEmbeddedSftpServer({ root: ws.path('server'), username: 'u', password: 'pw' });
    cleanups.push(() => server.close());
    const config = sftpTransportSchema.parse({ type: 'sftp', host: '127.0.0.1', port: server.port, username: 'u', password: 'pw', remoteDir: 'in', hostKey: server.hostKeyFingerprint });
    const { limiter, slept } = recordingLimiter();
    const transport = new SftpTransport(config, { logger: pino({ level: 'silent' }), stateDir: ws.path('state'), bandwidth: limiter });
    const sent = await exercise(transport, ws.dir);
    expectPaced(slept(), sent);
    expect(fs.readFileSync(ws.path('server', 'in', 'small.csv'))).toEqual(fs.readFileSync(ws.path('small.csv')));
  });

  it('ftp: the data connection pulls the file at the bucket\'s pace (STOR and APPE)', async () => {
    ws = createWorkspace();
    const server = await startFtpServer({ root: ws.path('server'), tls: false });
    cleanups.push(() => server.close());
    const config = ftpTransportSchema.parse({ type: 'ftp', host: '127.0.0.1', port: server.port, username: server.user, password: server.password, remoteDir: 'in', secure: false });
    const { limiter, slept } = recordingLimiter();
    const transport = new FtpTransport(config, { logger: pino({ level: 'silent' }), stateDir: ws.path('state'), bandwidth: limiter });
    const sent = await exercise(transport, ws.dir);
    expectPaced(slept(), sent);
    expect(fs.readFileSync(ws.path('server', 'in', 'small.csv'))).toEqual(fs.readFileSync(ws.path('small.csv')));
  });

  it('dropbox: every request body (single upload, session chunks) waits for the bucket', async () => {
    ws = createWorkspace();
    const fake = await FakeDropbox.start();
    cleanups.push(() => fake.close());
    const config = dropboxTransportSchema.parse({ type: 'dropbox', refreshToken: fake.refreshToken, appKey: FAKE_APP_KEY, remoteDir: '/in', baseUrl: fake.url });
    const { limiter, slept } = recordingLimiter();
    const transport = new DropboxTransport(config, { logger: pino({ level: 'silent' }), stateDir: ws.path('state'), bandwidth: limiter }, { singleUploadMaxBytes: 256 * KiB, chunkBytes: 256 * KiB });
    const sent = await exercise(transport, ws.dir);
    // RPC bodies (JSON: check/user, get_metadata) count too: a few hundred bytes.
    expectPaced(slept(), sent, 0.01);
  });

  const cephSkip = cephUnavailable();
  if (cephSkip) console.warn(`Skipping the s3 bandwidth test against Ceph: ${cephSkip}`);
  it.skipIf(cephSkip !== null)('s3: every body (PutObject, multipart part) leaves as the bucket allows', { timeout: 120_000 }, async () => {
    ws = createWorkspace();
    const ceph = await sharedCeph();
    cleanups.push(() => ceph.stop());
    const s3 = testS3Client(ceph);
    cleanups.push(() => s3.destroy());
    const bucket = await createTestBucket(s3);
    const config = s3TransportSchema.parse(s3TransportConfig(ceph, bucket));
    const { limiter, slept } = recordingLimiter();
    // 1 MiB goes up as a one-part multipart upload; the append rewrites the 5 KiB object whole.
    const transport = new S3Transport(config, { logger: pino({ level: 'silent' }), stateDir: ws.path('state'), bandwidth: limiter }, new S3Shared(), {
      wholeMaxBytes: 256 * KiB,
      partBytes: 5 * MiB,
    });
    const sent = await exercise(transport, ws.dir);
    // The whole rewrite of the small object sends its first 5 KiB again, and twice: Ceph refuses
    // the first (quoted) spelling of If-Match, so the body goes again with the bare one
    // (src/transports/s3/conditional.ts); those bytes cross the link too.
    expectPaced(slept(), sent + 5 * KiB + 69 * KiB);
    expect(await objectBytes(s3, bucket, 'site-7/small.csv')).toEqual(fs.readFileSync(ws.path('small.csv')));
    expect((await objectBytes(s3, bucket, 'site-7/big.bin'))?.length).toBe(MiB);
  });
});
