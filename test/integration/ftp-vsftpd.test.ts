/**
 * Interoperability: the ftp transport against Debian's vsftpd (FTPS required for logins and
 * data), started per test as a child process. Skipped, with the reason printed, where vsftpd or
 * its prerequisites are missing (see test/helpers/vsftpd.ts); CI installs them.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ftpTransportSchema, type FtpTransportConfig } from '../../src/config/schema.js';
import { TaskMaster } from '../../src/index.js';
import { PushtaskError } from '../../src/shared/errors.js';
import { FtpTransport } from '../../src/transports/ftp.js';
import { useTestCertificates } from '../helpers/tls.js';
import { startVsftpd, vsftpdUnavailable, type VsftpdOptions, type VsftpdServer } from '../helpers/vsftpd.js';
import { createWorkspace, sameBytes, testConfig, waitFor, type Workspace } from '../helpers/workspace.js';

const unavailable = vsftpdUnavailable();
if (unavailable) console.warn(`[ftp-vsftpd.test] skipped: ${unavailable}`);

const certs = useTestCertificates();
let ws: Workspace;
const servers: VsftpdServer[] = [];
const transports: FtpTransport[] = [];
let master: TaskMaster | null = null;

afterEach(async () => {
  await master?.stop();
  master = null;
  await Promise.all(transports.splice(0).map((t) => t.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
  ws?.cleanup();
});

async function vsftpd(options: VsftpdOptions = {}): Promise<VsftpdServer> {
  const server = await startVsftpd(options);
  servers.push(server);
  return server;
}

function configFor(server: VsftpdServer, overrides: Partial<FtpTransportConfig> = {}) {
  return {
    type: 'ftp' as const,
    host: server.host,
    port: server.port,
    username: server.user,
    password: server.password,
    remoteDir: 'incoming',
    tls: { ca: certs.caFile },
    ...overrides,
  };
}

function transportFor(server: VsftpdServer, overrides: Partial<FtpTransportConfig> = {}): FtpTransport {
  const transport = new FtpTransport(ftpTransportSchema.parse(configFor(server, overrides)), {
    logger: pino({ level: 'silent' }),
    stateDir: ws.path('state'),
  });
  transports.push(transport);
  return transport;
}

function upload(transport: FtpTransport, localPath: string, remotePath: string) {
  return transport.upload({ localPath, remotePath, mtime: fs.statSync(localPath).mtime, signal: AbortSignal.timeout(30_000) });
}

async function connectFailure(transport: FtpTransport): Promise<PushtaskError> {
  const error = await transport.connect(AbortSignal.timeout(15_000)).then(
    () => {
      throw new Error('expected the connection to fail');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PushtaskError);
  return error as PushtaskError;
}

function listFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .sort();
}

describe.skipIf(unavailable !== null)('ftp transport against vsftpd', () => {
  it('uploads byte-identical files over explicit FTPS, creating folders and replacing files atomically', async () => {
    ws = createWorkspace();
    const server = await vsftpd();
    const transport = transportFor(server);
    await transport.connect(AbortSignal.timeout(15_000));
    const files = {
      'small.csv': Buffer.from('time,value\n1,2\n'),
      'empty.log': Buffer.alloc(0),
      'sub/deeper/big.bin': randomBytes(5 * 1024 * 1024),
    };
    for (const [name, content] of Object.entries(files)) {
      const local = ws.write(`local/${name}`, content);
      expect((await upload(transport, local, name)).bytes).toBe(content.length);
      expect(sameBytes(local, path.join(server.root, 'incoming', name)), server.log()).toBe(true);
    }
    // Replacing: vsftpd renames over an existing file; many small transfers in a row exercise
    // the TLS data connections (some vsftpd builds drop TLS 1.3 ones now and then).
    for (let version = 1; version <= 15; version += 1) {
      const local = ws.write('local/report.txt', `version ${version}\n`);
      await upload(transport, local, 'report.txt');
    }
    expect(fs.readFileSync(path.join(server.root, 'incoming/report.txt'), 'utf8')).toBe('version 15\n');
    expect(listFiles(server.root)).toEqual(['incoming/empty.log', 'incoming/report.txt', 'incoming/small.csv', 'incoming/sub/deeper/big.bin']);
    // vsftpd has no MFMT: the transport does not try it.
    expect(server.log()).not.toMatch(/"MFMT/);
    expect(server.log()).toMatch(/"AUTH TLS"/);
  });

  it('uploads over implicit FTPS', async () => {
    ws = createWorkspace();
    const server = await vsftpd({ tls: 'implicit' });
    const transport = transportFor(server, { secure: 'implicit' });
    await transport.connect(AbortSignal.timeout(15_000));
    const local = ws.write('local/i.bin', randomBytes(200_000));
    await upload(transport, local, 'i.bin');
    expect(sameBytes(local, path.join(server.root, 'incoming/i.bin'))).toBe(true);
  });

  it('reports a wrong password as AUTH_FAILED', async () => {
    ws = createWorkspace();
    const server = await vsftpd();
    const error = await connectFailure(transportFor(server, { password: 'wrong-password' }));
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.message).toContain(`"${server.user}"`);
    expect(error.message).not.toContain('wrong-password');
  });

  it('says the server does not offer TLS when vsftpd runs without it', async () => {
    ws = createWorkspace();
    const server = await vsftpd({ tls: false });
    const error = await connectFailure(transportFor(server));
    expect(error.code).toBe('CONNECT_FAILED');
    expect(error.message).toMatch(/does not offer TLS.*secure: false/);
  });

  it('says encryption is required when plain FTP meets a server that forces TLS', async () => {
    ws = createWorkspace();
    const server = await vsftpd();
    const error = await connectFailure(transportFor(server, { secure: false }));
    expect(error.code).toBe('CONNECT_FAILED');
    expect(error.message).toMatch(/requires encryption.*secure: true/);
  });

  it("rejects vsftpd's certificate without the CA, explaining tls.ca", async () => {
    ws = createWorkspace();
    const server = await vsftpd();
    const error = await connectFailure(transportFor(server, { tls: { rejectUnauthorized: true } }));
    expect(error.code).toBe('CERTIFICATE_REJECTED');
    expect(error.message).toMatch(/tls: \{ ca: /);
  });

  it('delivers a watched file and a drop-folder file in a sub-folder through TaskMaster', async () => {
    ws = createWorkspace();
    const server = await vsftpd();
    ws.write('data/log.csv', 'time,value\n1,2\n');
    ws.write('drop/site-9/report.txt', 'report');
    master = new TaskMaster(
      testConfig({
        watch: [{ file: 'data/log.csv' }, { dir: 'drop', stableMs: 100 }],
        transport: configFor(server),
        retry: { quickDelayMs: 50, longDelayMs: 200 },
      }),
      { cwd: ws.dir },
    );
    await master.start();
    await waitFor(
      () =>
        sameBytes(ws.path('data/log.csv'), path.join(server.root, 'incoming/log.csv')) &&
        sameBytes(ws.path('drop/site-9/report.txt'), path.join(server.root, 'incoming/site-9/report.txt')),
      'both files on vsftpd',
      20_000,
    );
    ws.append('data/log.csv', '3,4\n');
    master.notify('data/log.csv');
    await waitFor(() => sameBytes(ws.path('data/log.csv'), path.join(server.root, 'incoming/log.csv')), 'the update on vsftpd', 20_000);
  });

  it('appends only the new bytes in append mode (APPE), and replaces a rewritten file whole', async () => {
    ws = createWorkspace();
    const server = await vsftpd();
    ws.write('data/log.csv', 'time,value\n');
    master = new TaskMaster(
      testConfig({
        watch: [{ file: 'data/log.csv', mode: 'append' }],
        transport: configFor(server),
        retry: { quickDelayMs: 50, longDelayMs: 200 },
      }),
      { cwd: ws.dir },
    );
    const sizes: number[] = [];
    master.on('uploaded', (event) => sizes.push(event.bytes));
    await master.start();
    const remote = path.join(server.root, 'incoming/log.csv');
    await waitFor(() => sameBytes(ws.path('data/log.csv'), remote), 'the first upload', 20_000);
    for (let i = 0; i < 3; i += 1) {
      ws.append('data/log.csv', `${i},x\n`);
      master.notify('data/log.csv');
      await waitFor(() => sameBytes(ws.path('data/log.csv'), remote), `append ${i}`, 20_000);
    }
    ws.write('data/log.csv', 'rotated\n');
    master.notify('data/log.csv');
    await waitFor(() => sameBytes(ws.path('data/log.csv'), remote), 'the rotated file', 20_000);
    await waitFor(() => sizes.length >= 5, 'the upload events');
    expect(sizes).toEqual([11, 4, 4, 4, 8]);
  });
});
