/**
 * Link-fault scenarios shared by the integration tests (test/integration/link-faults.test.ts) and
 * the bench (bench/faults.ts): a real agent (TaskMaster + subtask) uploads to a real server through
 * the fault proxy, and each scenario measures what a user on a flaky link feels:
 * - reset → next delivery: every connection is reset while an upload is in flight; ms until the
 *   file is on the server;
 * - silent drop → delivery: the link goes silent (connections open then stay dead) while an
 *   upload is in flight; ms from the link's return until the file is on the server;
 * - connections per delivery after the dead time: TCP connections (logins) the proxy accepted
 *   to send one small file once the idle connection was closed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PushtaskConfig, TaskMaster } from '../../src/index.js';
import { generateHostKey, startEmbeddedSftpServer } from '../../src/embedded/sftpServer.js';
import { FAKE_APP_KEY, FakeDropbox } from './fakeDropbox.js';
import { cephUnavailable, sharedCeph } from './ceph.js';
import { startFtpServer } from './ftpServer.js';
import { createTestBucket, testS3Client } from './s3.js';
import { mirrorBucket } from './s3Mirror.js';
import { startSshd } from './sshd.js';
import { startTcpProxy, type LinkShape, type TcpProxy } from './tcpProxy.js';
import { testCertificates } from './tls.js';

export interface LinkTarget {
  name: string;
  /** The server's own port: the proxy forwards to it. */
  serverPort: number;
  transport(port: number): PushtaskConfig['transport'];
  /** Where a delivered file lands on this machine. */
  storedPath(remote: string): string;
  /** Only the control connection crosses the proxy (FTP's passive data connections go direct). */
  controlOnly?: boolean;
  /** Logins the server saw so far (sshd's `Accepted` lines), where it tells. */
  logins?(): number;
  close(): Promise<void>;
}

const REMOTE_DIR = 'in';

export async function embeddedSftpTarget(): Promise<LinkTarget> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-link-sftp-'));
  const server = await startEmbeddedSftpServer({ root, username: 'link', password: 'link-secret-pw', hostKey: generateHostKey() });
  return {
    name: 'sftp (embedded)',
    serverPort: server.port,
    transport: (port) => ({ type: 'sftp', host: '127.0.0.1', port, username: 'link', password: 'link-secret-pw', remoteDir: REMOTE_DIR, hostKey: server.hostKeyFingerprint }),
    storedPath: (remote) => path.join(root, REMOTE_DIR, remote),
    async close() {
      await server.close();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/** OpenSSH's sshd, or null where it cannot run (see sshd.ts). */
export async function sshdTarget(): Promise<LinkTarget | null> {
  const sshd = await startSshd({ logLevel: 'INFO' });
  if (!sshd) return null;
  const root = path.join(sshd.dir, 'upload');
  fs.mkdirSync(root);
  return {
    name: 'sftp (OpenSSH)',
    serverPort: sshd.port,
    transport: (port) => ({
      type: 'sftp',
      host: '127.0.0.1',
      port,
      username: sshd.username,
      privateKey: sshd.privateKeyPath,
      remoteDir: path.join(root, REMOTE_DIR),
      hostKey: sshd.hostKeyFingerprint,
    }),
    storedPath: (remote) => path.join(root, REMOTE_DIR, remote),
    logins: () => (sshd.log().match(/Accepted publickey/g) ?? []).length,
    close: () => sshd.stop(),
  };
}

/** ftp-srv with explicit FTPS. Only the control connection crosses the proxy (passive data goes direct). */
export async function ftpsTarget(): Promise<LinkTarget> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-link-ftp-'));
  const certs = await testCertificates();
  const server = await startFtpServer({ root });
  return {
    name: 'ftps (ftp-srv)',
    serverPort: server.port,
    controlOnly: true,
    transport: (port) =>
      ({ type: 'ftp', host: '127.0.0.1', port, username: server.user, password: server.password, remoteDir: REMOTE_DIR, tls: { ca: certs.caFile } }) as PushtaskConfig['transport'],
    storedPath: (remote) => path.join(root, REMOTE_DIR, remote),
    async close() {
      await server.close();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

export async function dropboxTarget(): Promise<LinkTarget> {
  const fake = await FakeDropbox.start();
  return {
    name: 'dropbox (fake)',
    serverPort: Number(new URL(fake.url).port),
    transport: (port) => ({ type: 'dropbox', refreshToken: fake.refreshToken, appKey: FAKE_APP_KEY, remoteDir: `/${REMOTE_DIR}`, baseUrl: `http://127.0.0.1:${port}` }),
    storedPath: (remote) => fake.localPath(`/${REMOTE_DIR}/${remote}`),
    close: () => fake.close(),
  };
}

/** Ceph RGW (S3), read back through a polling mirror; null where Ceph cannot run (see ceph.ts). */
export async function s3Target(): Promise<LinkTarget | null> {
  if (cephUnavailable()) return null;
  const ceph = await sharedCeph();
  const client = testS3Client(ceph);
  const bucket = await createTestBucket(client);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-link-s3-'));
  const mirror = mirrorBucket(client, bucket, `${REMOTE_DIR}/`, path.join(root, REMOTE_DIR), 50);
  return {
    name: 's3 (Ceph RGW)',
    serverPort: ceph.port,
    transport: (port) => ({ type: 's3', bucket, remoteDir: REMOTE_DIR, endpoint: `http://127.0.0.1:${port}`, accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey }),
    storedPath: (remote) => path.join(root, REMOTE_DIR, remote),
    async close() {
      await mirror.stop();
      client.destroy();
      await ceph.stop();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

export interface LinkRun {
  master: TaskMaster;
  proxy: TcpProxy;
  target: LinkTarget;
  /** The watched data file. */
  file: string;
  close(): Promise<void>;
}

export interface LinkRunOptions {
  shape?: LinkShape;
  config?: Partial<PushtaskConfig>;
}

/** The link: 50 ms each way, 256 KiB/s each way. */
export const FIELD_LINK: LinkShape = { latencyMs: 50, upBytesPerSecond: 256 * 1024, downBytesPerSecond: 256 * 1024 };

/** Starts an agent watching one data file, delivering to `target` through a new fault proxy; waits for its first delivery. */
export async function startLinkRun(TaskMasterClass: typeof TaskMaster, target: LinkTarget, options: LinkRunOptions = {}): Promise<LinkRun> {
  const proxy = await startTcpProxy(target.serverPort, '127.0.0.1', options.shape ?? {});
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-link-agent-'));
  const file = path.join(dir, 'data', 'log.csv');
  fs.mkdirSync(path.dirname(file));
  fs.writeFileSync(file, 'start\n');
  const master = new TaskMasterClass(
    {
      watch: [{ file: 'data/log.csv' }],
      transport: target.transport(proxy.port),
      intervalMs: 200,
      log: { dir: 'logs', level: 'info', console: false },
      ...options.config,
    },
    { cwd: dir },
  );
  const first = nextDelivery(master, target, file, 60_000);
  await master.start();
  await first;
  return {
    master,
    proxy,
    target,
    file,
    async close() {
      await master.stop();
      await proxy.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves when the server holds exactly the data file's current bytes. */
export function nextDelivery(master: TaskMaster, target: LinkTarget, file: string, timeoutMs: number): Promise<void> {
  const stored = target.storedPath(path.basename(file));
  return new Promise((resolve, reject) => {
    const check = () => {
      try {
        if (fs.readFileSync(stored).equals(fs.readFileSync(file))) {
          finish();
          resolve();
        }
      } catch {
        // not there yet
      }
    };
    const timer = setTimeout(() => {
      finish();
      reject(new Error(`${target.name}: no delivery of ${file} within ${timeoutMs} ms`));
    }, timeoutMs);
    // A target read back through a mirror (S3) shows the file a moment after the `uploaded` event.
    const poll = setInterval(check, 25);
    const finish = () => {
      clearTimeout(timer);
      clearInterval(poll);
      master.off('uploaded', check);
    };
    master.on('uploaded', check);
  });
}

let counter = 0;
/** New content for the data file (`bytes` long, unique each time), notified. */
export function writeAndNotify(run: LinkRun, bytes: number): void {
  counter += 1;
  const line = `${Date.now()},${counter}\n`;
  fs.writeFileSync(run.file, Buffer.concat([Buffer.from(line), Buffer.alloc(Math.max(0, bytes - line.length), 0x61 + (counter % 26))]));
  run.master.notify(run.file);
}

/** Waits until the proxy has carried `bytes` more upstream (an upload is on the wire), at most `timeoutMs`. */
async function untilUpstream(proxy: TcpProxy, bytes: number, timeoutMs: number): Promise<void> {
  const start = proxy.bytesUp;
  const deadline = Date.now() + timeoutMs;
  while (proxy.bytesUp - start < bytes && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** Upstream bytes that show the upload is under way: a quarter of it, or FTP's PASV + STOR on the control connection. */
function inFlightMark(run: LinkRun, bytes: number): number {
  return run.target.controlOnly ? 100 : Math.min(bytes / 4, 16 * 1024);
}

/** Resets every connection while an upload of `bytes` is in flight; ms from the reset until the file is on the server. */
export async function resetToDelivery(run: LinkRun, bytes: number, timeoutMs = 60_000): Promise<number> {
  const delivered = nextDelivery(run.master, run.target, run.file, timeoutMs);
  writeAndNotify(run, bytes);
  await untilUpstream(run.proxy, inFlightMark(run, bytes), 5000);
  run.proxy.cutAll({ reset: true });
  const cutAt = performance.now();
  await delivered;
  return performance.now() - cutAt;
}

/**
 * The link goes silent for `dropMs` while an upload of `bytes` is in flight (connections open then
 * stay dead; new ones get through once it is back); ms from the link's return until delivery.
 */
export async function silentDropToDelivery(run: LinkRun, bytes: number, dropMs: number, timeoutMs = 120_000, mark = inFlightMark(run, bytes)): Promise<number> {
  const delivered = nextDelivery(run.master, run.target, run.file, timeoutMs);
  writeAndNotify(run, bytes);
  await untilUpstream(run.proxy, mark, 5000);
  run.proxy.blackhole('drop');
  await new Promise((resolve) => setTimeout(resolve, dropMs));
  run.proxy.blackhole(false);
  const backAt = performance.now();
  await delivered;
  return Math.max(0, performance.now() - backAt);
}

/**
 * The link goes silent while a new connection is being made (after the dead time closed the idle
 * one, the first bytes of the handshake have crossed): ms from the link's return until delivery.
 */
export async function silentDropWhileConnecting(run: LinkRun, deadTimeMs: number, dropMs: number, timeoutMs = 120_000): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, deadTimeMs + 2500)); // the dead time, checked every interval
  return silentDropToDelivery(run, 1024, dropMs, timeoutMs, 8);
}

/**
 * After the dead time closed the idle connection: TCP connections the proxy accepted (and logins
 * the server saw, where it tells) to deliver one small file.
 */
export async function connectionsPerDelivery(run: LinkRun, deadTimeMs: number): Promise<{ connections: number; logins: number | null }> {
  await new Promise((resolve) => setTimeout(resolve, deadTimeMs + 2500)); // the dead time, checked every interval
  const loginsBefore = run.target.logins?.() ?? null;
  run.proxy.resetCounters();
  const delivered = nextDelivery(run.master, run.target, run.file, 30_000);
  writeAndNotify(run, 64);
  await delivered;
  await new Promise((resolve) => setTimeout(resolve, 500)); // a second login would show by now
  const loginsAfter = run.target.logins?.() ?? null;
  return { connections: run.proxy.accepted, logins: loginsBefore === null || loginsAfter === null ? null : loginsAfter - loginsBefore };
}
