/** The servers the chaos suite runs against, each with a way to take it down and bring it back. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateHostKey, startEmbeddedSftpServer, type EmbeddedSftpServer } from '../../src/embedded/sftpServer.js';
import type { PushtaskConfig } from '../../src/index.js';
import { sharedCeph } from '../helpers/ceph.js';
import { FAKE_APP_KEY, FakeDropbox } from '../helpers/fakeDropbox.js';
import { startFtpServer, type TestFtpServer } from '../helpers/ftpServer.js';
import { createTestBucket, incompleteUploads, testS3Client } from '../helpers/s3.js';
import { mirrorBucket } from '../helpers/s3Mirror.js';
import { startTcpProxy } from '../helpers/tcpProxy.js';
import { testCertificates } from '../helpers/tls.js';
import type { Target } from './harness.js';

const REMOTE_DIR = 'in';

function tempRoot(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `pushtask-chaos-${name}-server-`));
}

export async function localTarget(): Promise<Target> {
  const root = tempRoot('local');
  return {
    name: 'local',
    transport: { type: 'local', dir: path.join(root, REMOTE_DIR) },
    storedPath: (remote) => path.join(root, REMOTE_DIR, remote),
    storedRoot: () => path.join(root, REMOTE_DIR),
    down: async () => undefined,
    up: async () => undefined,
    close: async () => fs.rmSync(root, { recursive: true, force: true }),
  };
}

/** The embedded SFTP server behind a TCP proxy; "down" stops the server itself (same port and key when it returns). */
export async function sftpTarget(): Promise<Target> {
  const root = tempRoot('sftp');
  const hostKey = generateHostKey();
  const credentials = { root, username: 'chaos', password: 'chaos-secret-pw', hostKey };
  let server: EmbeddedSftpServer | null = await startEmbeddedSftpServer(credentials);
  const port = server.port;
  const fingerprint = server.hostKeyFingerprint;
  const proxy = await startTcpProxy(port);
  return {
    name: 'sftp',
    transport: { type: 'sftp', host: '127.0.0.1', port: proxy.port, username: 'chaos', password: 'chaos-secret-pw', remoteDir: REMOTE_DIR, hostKey: fingerprint, transfers: 4 },
    storedPath: (remote) => path.join(root, REMOTE_DIR, remote),
    storedRoot: () => path.join(root, REMOTE_DIR),
    proxy,
    async down() {
      await server?.close();
      server = null;
    },
    async up() {
      server ??= await startEmbeddedSftpServer({ ...credentials, port });
    },
    async close() {
      await proxy.close();
      await server?.close();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * ftp-srv with explicit FTPS; the control connection crosses a TCP proxy (passive data
 * connections go direct, on ports the server picks), so link faults strike the control connection.
 */
export async function ftpTarget(): Promise<Target> {
  const root = tempRoot('ftp');
  const certs = await testCertificates();
  let server: TestFtpServer | null = await startFtpServer({ root });
  const port = server.port;
  const { user, password } = server;
  const proxy = await startTcpProxy(port);
  return {
    name: 'ftp',
    transport: { type: 'ftp', host: '127.0.0.1', port: proxy.port, username: user, password, remoteDir: REMOTE_DIR, tls: { ca: certs.caFile }, transfers: 2 } as PushtaskConfig['transport'],
    storedPath: (remote) => path.join(root, REMOTE_DIR, remote),
    storedRoot: () => path.join(root, REMOTE_DIR),
    proxy,
    async down() {
      await server?.close();
      server = null;
    },
    async up() {
      server ??= await startFtpServer({ root, port });
    },
    async close() {
      await proxy.close();
      await server?.close();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The fake Dropbox behind a TCP proxy; "down" refuses connections at the proxy. */
export async function dropboxTarget(): Promise<Target> {
  const fake = await FakeDropbox.start();
  const port = Number(new URL(fake.url).port);
  const proxy = await startTcpProxy(port);
  return {
    name: 'dropbox',
    transport: { type: 'dropbox', refreshToken: fake.refreshToken, appKey: FAKE_APP_KEY, remoteDir: `/${REMOTE_DIR}`, baseUrl: `http://127.0.0.1:${proxy.port}` },
    storedPath: (remote) => fake.localPath(`/${REMOTE_DIR}/${remote}`),
    storedRoot: () => fake.localPath(`/${REMOTE_DIR}`),
    proxy,
    async down() {
      proxy.refuse(true);
      proxy.cutAll();
    },
    async up() {
      proxy.refuse(false);
    },
    async close() {
      await proxy.close();
      await fake.close();
    },
  };
}

/**
 * Ceph RGW (the run's shared cluster, test/helpers/ceph.ts) behind a TCP proxy; "down" refuses
 * connections at the proxy. The harness reads stored files from disk: a mirror polls the bucket.
 */
export async function s3Target(): Promise<Target> {
  const ceph = await sharedCeph();
  const client = testS3Client(ceph);
  const bucket = await createTestBucket(client);
  const proxy = await startTcpProxy(ceph.port);
  const root = tempRoot('s3');
  const mirror = mirrorBucket(client, bucket, `${REMOTE_DIR}/`, path.join(root, REMOTE_DIR));
  return {
    name: 's3',
    transport: { type: 's3', bucket, remoteDir: REMOTE_DIR, endpoint: `http://127.0.0.1:${proxy.port}`, accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey, transfers: 4 },
    storedPath: (remote) => path.join(root, REMOTE_DIR, remote),
    storedRoot: () => path.join(root, REMOTE_DIR),
    proxy,
    async down() {
      proxy.refuse(true);
      proxy.cutAll();
    },
    async up() {
      proxy.refuse(false);
    },
    async close() {
      await mirror.stop();
      // Reported, not asserted: a kill between CreateMultipartUpload and its journal write leaves
      // an upload that only the 24 h sweep removes (README, "S3 multipart uploads survive crashes").
      const incomplete = await incompleteUploads(client, bucket).catch(() => []);
      console.log(`chaos/s3: ${incomplete.length} incomplete multipart upload(s) left on the server`);
      await proxy.close();
      client.destroy();
      await ceph.stop();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}
