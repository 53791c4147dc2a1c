/**
 * The ftp transport against a real FTP/FTPS server (ftp-srv, in process, on 127.0.0.1), and
 * end to end through TaskMaster.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { FtpTransportConfig } from '../../src/config/schema.js';
import { ftpTransportSchema } from '../../src/config/schema.js';
import { TaskMaster } from '../../src/index.js';
import type { UploadedEvent } from '../../src/master/events.js';
import { PushtaskError } from '../../src/shared/errors.js';
import { FtpTransport } from '../../src/transports/ftp.js';
import { freePort } from '../helpers/daemon.js';
import { startFtpServer, type FtpServerOptions, type TestFtpServer } from '../helpers/ftpServer.js';
import { useTestCertificates } from '../helpers/tls.js';
import { createWorkspace, nextEvent, sameBytes, testConfig, waitFor, type Workspace } from '../helpers/workspace.js';

const certs = useTestCertificates();
let ws: Workspace;
const servers: TestFtpServer[] = [];
const transports: FtpTransport[] = [];
let master: TaskMaster | null = null;

afterEach(async () => {
  await master?.stop();
  master = null;
  await Promise.all(transports.splice(0).map((t) => t.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
  ws?.cleanup();
});

async function server(options: FtpServerOptions = {}): Promise<TestFtpServer> {
  const started = await startFtpServer({ root: ws.path('server'), ...options });
  servers.push(started);
  return started;
}

interface LogRecord {
  level: number;
  msg: string;
}

/** A real pino logger whose lines are kept for assertions. */
function capturingLogger(): { logger: pino.Logger; records: LogRecord[]; warnings: () => string[] } {
  const records: LogRecord[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      records.push(JSON.parse(chunk.toString()) as LogRecord);
      done();
    },
  });
  const logger = pino({ level: 'trace' }, sink);
  return { logger, records, warnings: () => records.filter((r) => r.level === 40).map((r) => r.msg) };
}

function transportFor(
  target: TestFtpServer,
  overrides: Partial<FtpTransportConfig> = {},
  logger: pino.Logger = pino({ level: 'silent' }),
): FtpTransport {
  const config = ftpTransportSchema.parse({
    type: 'ftp',
    host: target.host,
    port: target.port,
    username: target.user,
    password: target.password,
    remoteDir: 'incoming',
    tls: { ca: certs.caFile },
    ...overrides,
  });
  const transport = new FtpTransport(config, { logger, stateDir: ws.path('state') });
  transports.push(transport);
  return transport;
}

async function connected(transport: FtpTransport): Promise<FtpTransport> {
  await transport.connect(AbortSignal.timeout(10_000));
  return transport;
}

function upload(transport: FtpTransport, localPath: string, remotePath: string, options: { mtime?: Date; signal?: AbortSignal } = {}) {
  return transport.upload({
    localPath,
    remotePath,
    mtime: options.mtime ?? fs.statSync(localPath).mtime,
    signal: options.signal ?? AbortSignal.timeout(30_000),
  });
}

async function failure(promise: Promise<unknown>): Promise<PushtaskError> {
  const error = await promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PushtaskError);
  return error as PushtaskError;
}

/** Files under `dir`, relative, '/'-separated: what the server's folder holds. */
function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .sort();
}

describe('ftp transport: uploads over explicit FTPS', () => {
  it('uploads small, empty and 20 MB files byte-identical, under remoteDir, leaving no temporary files', async () => {
    ws = createWorkspace();
    const srv = await server();
    const transport = await connected(transportFor(srv));
    const files = {
      'small.csv': Buffer.from('time,value\n1,2\n'),
      'empty.log': Buffer.alloc(0),
      'big.bin': randomBytes(20 * 1024 * 1024),
    };
    for (const [name, content] of Object.entries(files)) {
      const local = ws.write(`local/${name}`, content);
      const result = await upload(transport, local, name);
      expect(result.bytes).toBe(content.length);
      expect(sameBytes(local, path.join(srv.root, 'incoming', name))).toBe(true);
    }
    expect(listFiles(srv.root)).toEqual(['incoming/big.bin', 'incoming/empty.log', 'incoming/small.csv']);
    // Encrypted control and data connections, and no change of directory.
    expect(srv.commands).toContain('AUTH TLS');
    expect(srv.commands).toContain('PROT P');
    expect(srv.commands.some((c) => c.startsWith('CWD'))).toBe(false);
  });

  it('creates missing nested folders below a nested remoteDir', async () => {
    ws = createWorkspace();
    const srv = await server();
    const transport = await connected(transportFor(srv, { remoteDir: 'data/incoming' }));
    const local = ws.write('local/x.txt', 'nested');
    await upload(transport, local, 'site-7/2026/11/x.txt');
    await upload(transport, local, 'site-7/2026/12/x.txt');
    expect(listFiles(srv.root)).toEqual(['data/incoming/site-7/2026/11/x.txt', 'data/incoming/site-7/2026/12/x.txt']);
  });

  it('accepts an absolute remoteDir', async () => {
    ws = createWorkspace();
    const srv = await server();
    const transport = await connected(transportFor(srv, { remoteDir: '/abs/dir' }));
    await upload(transport, ws.write('local/a.txt', 'a'), 'a.txt');
    expect(listFiles(srv.root)).toEqual(['abs/dir/a.txt']);
  });

  it('keeps the mtime with MFMT when the server offers it', async () => {
    ws = createWorkspace();
    const srv = await server();
    const transport = await connected(transportFor(srv));
    const mtime = new Date('2024-03-04T05:06:07Z');
    await upload(transport, ws.write('local/old.csv', 'old data'), 'old.csv', { mtime });
    expect(fs.statSync(path.join(srv.root, 'incoming/old.csv')).mtime.toISOString()).toBe(mtime.toISOString());
    expect(srv.commands.filter((c) => c.startsWith('MFMT'))).toHaveLength(1);
  });

  it('refuses remote paths that would leave remoteDir, before sending anything', async () => {
    ws = createWorkspace();
    const srv = await server();
    const transport = await connected(transportFor(srv));
    const local = ws.write('local/evil.txt', 'evil');
    const sent = srv.commands.length;
    for (const hostile of ['../evil.txt', 'a/../../evil.txt', '/etc/evil.txt', '..\\evil.txt', 'C:/evil.txt']) {
      const error = await failure(upload(transport, local, hostile));
      expect(error.code).toBe('UNSAFE_PATH');
    }
    expect(srv.commands.length).toBe(sent);
    expect(listFiles(srv.root)).toEqual([]);
    // A refused path does not break the connection.
    await upload(transport, local, 'fine.txt');
    expect(listFiles(srv.root)).toEqual(['incoming/fine.txt']);
  });

  it('queues uploads made at the same time on its one connection', async () => {
    ws = createWorkspace();
    const srv = await server();
    const transport = await connected(transportFor(srv));
    const names = ['p1.bin', 'p2.bin', 'p3.bin'];
    const locals = names.map((name) => ws.write(`local/${name}`, randomBytes(300_000)));
    await Promise.all(names.map((name, i) => upload(transport, locals[i]!, name)));
    for (const [i, name] of names.entries()) expect(sameBytes(locals[i]!, path.join(srv.root, 'incoming', name))).toBe(true);
    expect(srv.commands.filter((c) => c.startsWith('USER'))).toHaveLength(1);
  });

  it('describes the target without the password', () => {
    const base = { host: 'ftp.example.org', username: 'bob', password: 'hunter2-secret', remoteDir: 'in' };
    const describeConfig = (extra: object) => new FtpTransport(ftpTransportSchema.parse({ type: 'ftp', ...base, ...extra }), { logger: pino({ level: 'silent' }), stateDir: '/nonexistent' }).description;
    expect(describeConfig({})).toBe('ftps://bob@ftp.example.org:21/in');
    expect(describeConfig({ secure: 'implicit' })).toBe('ftps://bob@ftp.example.org:990/in (implicit TLS)');
    expect(describeConfig({ secure: false, port: 2121, remoteDir: '/srv/x' })).toBe('ftp://bob@ftp.example.org:2121/srv/x');
    expect(describeConfig({})).not.toContain('hunter2');
  });
});

describe('ftp transport: atomic replace', () => {
  it('never shows a partial file under the final name while a slow upload replaces it', async () => {
    ws = createWorkspace();
    const srv = await server({ chunkDelayMs: 2 });
    const transport = await connected(transportFor(srv));
    const oldContent = Buffer.from('old complete content\n'.repeat(100));
    const newContent = randomBytes(3 * 1024 * 1024);
    await upload(transport, ws.write('local/v1.bin', oldContent), 'data.bin');
    const final = path.join(srv.root, 'incoming/data.bin');

    let done = false;
    let sawTemporary = false;
    const replacing = upload(transport, ws.write('local/v2.bin', newContent), 'data.bin').finally(() => {
      done = true;
    });
    const seen = new Set<string>();
    while (!done) {
      const now = fs.readFileSync(final);
      seen.add(now.equals(oldContent) ? 'old' : now.equals(newContent) ? 'new' : `partial (${now.length} bytes)`);
      sawTemporary ||= listFiles(path.join(srv.root, 'incoming')).some((name) => name.endsWith('.pushtask-tmp'));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await replacing;
    expect([...seen].filter((s) => s.startsWith('partial'))).toEqual([]);
    expect(seen.has('old')).toBe(true);
    expect(sawTemporary).toBe(true);
    expect(fs.readFileSync(final).equals(newContent)).toBe(true);
    expect(listFiles(srv.root)).toEqual(['incoming/data.bin']);
  });

  it('falls back to delete + rename on servers that refuse to rename onto a file, warning once', async () => {
    ws = createWorkspace();
    const srv = await server({ refuseRenameOntoExisting: true });
    const log = capturingLogger();
    const transport = await connected(transportFor(srv, {}, log.logger));
    for (const version of ['v1', 'v2', 'v3']) {
      const local = ws.write(`local/${version}.txt`, `content ${version}`);
      await upload(transport, local, 'report.txt');
      expect(fs.readFileSync(path.join(srv.root, 'incoming/report.txt'), 'utf8')).toBe(`content ${version}`);
    }
    const nonAtomic = log.warnings().filter((w) => w.includes('refuses to rename onto an existing file'));
    expect(nonAtomic).toHaveLength(1);
    expect(listFiles(srv.root)).toEqual(['incoming/report.txt']);
  });

  it('rejects an upload the server truncated but reported as stored, leaving the final file untouched', async () => {
    ws = createWorkspace();
    const healthy = await server();
    const first = await connected(transportFor(healthy));
    await upload(first, ws.write('local/v1.txt', 'version one'), 'log.txt');
    await first.close();
    await healthy.close();
    servers.splice(servers.indexOf(healthy), 1);

    const truncating = await server({ dropLastBytes: 10, port: healthy.port });
    const transport = await connected(transportFor(truncating));
    const error = await failure(upload(transport, ws.write('local/v2.txt', 'version two, somewhat longer'), 'log.txt'));
    expect(error.code).toBe('UPLOAD_FAILED');
    expect(error.message).toMatch(/stored 18 of 28 bytes/);
    expect(fs.readFileSync(path.join(truncating.root, 'incoming/log.txt'), 'utf8')).toBe('version one');
    expect(listFiles(truncating.root)).toEqual(['incoming/log.txt']);
  });
});

describe('ftp transport: connection errors', () => {
  it('reports a wrong password as AUTH_FAILED naming host and user, never the password', async () => {
    ws = createWorkspace();
    const srv = await server();
    const transport = transportFor(srv, { password: 'not-the-password' });
    const error = await failure(transport.connect(AbortSignal.timeout(10_000)));
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.message).toContain(`127.0.0.1:${srv.port}`);
    expect(error.message).toContain('"alice"');
    expect(error.message).not.toContain('not-the-password');
  });

  it('reports a refused connection as CONNECT_FAILED naming host:port', async () => {
    ws = createWorkspace();
    const port = await freePort();
    const transport = transportFor({ host: '127.0.0.1', port, user: 'u', password: 'p' } as TestFtpServer);
    const error = await failure(transport.connect(AbortSignal.timeout(10_000)));
    expect(error.code).toBe('CONNECT_FAILED');
    expect(error.message).toContain(`127.0.0.1:${port}`);
    expect(error.message).toMatch(/connection refused/);
  });

  it('says so when the server does not offer TLS, naming the setting that allows plain FTP', async () => {
    ws = createWorkspace();
    const srv = await server({ tls: false });
    const error = await failure(transportFor(srv).connect(AbortSignal.timeout(10_000)));
    expect(error.code).toBe('CONNECT_FAILED');
    expect(error.message).toMatch(/does not offer TLS/);
    expect(error.message).toMatch(/secure: false/);
  });

  it('rejects a certificate it cannot verify, explaining tls.ca; with tls.ca or rejectUnauthorized: false it works', async () => {
    ws = createWorkspace();
    const srv = await server();
    const error = await failure(transportFor(srv, { tls: { rejectUnauthorized: true } }).connect(AbortSignal.timeout(10_000)));
    expect(error.code).toBe('CERTIFICATE_REJECTED');
    expect(error.message).toMatch(/cannot be verified/);
    expect(error.message).toMatch(/tls: \{ ca: /);
    expect(error.message).toMatch(/rejectUnauthorized: false/);

    const local = ws.write('local/a.txt', 'trusted');
    await upload(await connected(transportFor(srv)), local, 'with-ca.txt');
    await upload(await connected(transportFor(srv, { tls: { rejectUnauthorized: false } })), local, 'unverified.txt');
    expect(listFiles(srv.root)).toEqual(['incoming/unverified.txt', 'incoming/with-ca.txt']);
  });

  it('fails fast after an error until connected again, then recovers', async () => {
    ws = createWorkspace();
    const srv = await server();
    const transport = await connected(transportFor(srv));
    const local = ws.write('local/a.txt', 'a');
    await upload(transport, local, 'a.txt');
    await srv.close();
    servers.splice(servers.indexOf(srv), 1);

    // The idle connection is gone, and a new one is refused.
    const broken = await failure(upload(transport, local, 'b.txt'));
    expect(broken.code).toBe('CONNECT_FAILED');
    expect(broken.message).toMatch(/connection refused/);
    const fast = await failure(upload(transport, local, 'c.txt'));
    expect(fast.message).toMatch(/Not connected to ftps:\/\/alice@127\.0\.0\.1/);

    const again = await server({ port: srv.port });
    await transport.close();
    await transport.close(); // idempotent
    await transport.connect(AbortSignal.timeout(10_000));
    await upload(transport, local, 'd.txt');
    expect(listFiles(again.root)).toEqual(['incoming/a.txt', 'incoming/d.txt']);
  });

  it('aborts an upload in flight when its signal fires, and the final name never appears', async () => {
    ws = createWorkspace();
    const srv = await server({ chunkDelayMs: 5 });
    const transport = await connected(transportFor(srv));
    const controller = new AbortController();
    const started = Date.now();
    const pending = upload(transport, ws.write('local/slow.bin', randomBytes(4 * 1024 * 1024)), 'slow.bin', { signal: controller.signal });
    setTimeout(() => controller.abort(new PushtaskError('TIMEOUT', 'Upload of slow.bin timed out')), 200);
    const error = await failure(pending);
    expect(error.code).toBe('TIMEOUT');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(fs.existsSync(path.join(srv.root, 'incoming/slow.bin'))).toBe(false);
  });

  it('removes the temporary file of an upload cut off with its connection, over the next connection', async () => {
    ws = createWorkspace();
    const srv = await server({ chunkDelayMs: 5 });
    const transport = await connected(transportFor(srv));
    const temporaries = (root: string) => listFiles(root).filter((name) => name.endsWith('.pushtask-tmp'));
    const pending = failure(upload(transport, ws.write('local/slow.bin', randomBytes(4 * 1024 * 1024)), 'slow.bin'));
    await waitFor(() => temporaries(srv.root).length === 1, 'the temporary file on the server');
    const { port, root } = srv;
    await srv.close();
    servers.splice(servers.indexOf(srv), 1);
    await pending;
    expect(temporaries(root)).toHaveLength(1);

    await server({ port, root });
    await transport.close();
    await transport.connect(AbortSignal.timeout(10_000));
    expect(temporaries(root)).toEqual([]);
  });
});

describe('ftp transport: implicit FTPS and plain FTP', () => {
  it('uploads over implicit FTPS', async () => {
    ws = createWorkspace();
    const srv = await server({ tls: 'implicit' });
    const transport = await connected(transportFor(srv, { secure: 'implicit' }));
    const local = ws.write('local/i.bin', randomBytes(1_000_000));
    await upload(transport, local, 'sub/i.bin');
    expect(sameBytes(local, path.join(srv.root, 'incoming/sub/i.bin'))).toBe(true);
    expect(srv.commands).not.toContain('AUTH TLS');
  });

  it('uploads over plain FTP with secure: false, warning once that the password travels in clear text', async () => {
    ws = createWorkspace();
    const srv = await server({ tls: false });
    const log = capturingLogger();
    const transport = await connected(transportFor(srv, { secure: false }, log.logger));
    const local = ws.write('local/p.txt', 'plain');
    await upload(transport, local, 'p.txt');
    // The uploader runs one transport per parallel lane: the warning still comes once.
    const second = await connected(transportFor(srv, { secure: false }, log.logger));
    await upload(second, local, 'p2.txt');
    expect(listFiles(srv.root)).toEqual(['incoming/p.txt', 'incoming/p2.txt']);
    expect(srv.commands).not.toContain('AUTH TLS');
    const clearText = log.warnings().filter((w) => /clear text/.test(w));
    expect(clearText).toHaveLength(1);
    expect(clearText[0]).toMatch(/secure: false/);
    expect(log.records.map((r) => r.msg).join('\n')).not.toContain(srv.password);
  });
});

describe('ftp transport through TaskMaster', () => {
  function ftpConfig(srv: TestFtpServer) {
    return {
      type: 'ftp' as const,
      host: srv.host,
      port: srv.port,
      username: srv.user,
      password: srv.password,
      remoteDir: 'incoming',
      tls: { ca: certs.caFile },
    };
  }

  it('delivers a watched file and a drop-folder file in a sub-folder over FTPS', async () => {
    ws = createWorkspace();
    const srv = await server();
    ws.write('data/log.csv', 'time,value\n');
    fs.mkdirSync(ws.path('drop'), { recursive: true });
    master = new TaskMaster(
      testConfig({ watch: [{ file: 'data/log.csv' }, { dir: 'drop', stableMs: 100 }], transport: ftpConfig(srv), retry: { quickDelayMs: 50, longDelayMs: 200 } }),
      { cwd: ws.dir },
    );
    await master.start();
    await waitFor(() => sameBytes(ws.path('data/log.csv'), path.join(srv.root, 'incoming/log.csv')), 'the watched file at start');

    ws.append('data/log.csv', '1,2\n');
    const size = fs.statSync(ws.path('data/log.csv')).size;
    const uploaded = nextEvent<UploadedEvent>(master, 'uploaded', (e) => e.bytes === size && e.remotePath === 'log.csv');
    master.notify('data/log.csv');
    await uploaded;
    expect(sameBytes(ws.path('data/log.csv'), path.join(srv.root, 'incoming/log.csv'))).toBe(true);

    ws.write('drop/site-3/report.txt', 'drop-folder report');
    await waitFor(() => sameBytes(ws.path('drop/site-3/report.txt'), path.join(srv.root, 'incoming/site-3/report.txt')), 'the drop-folder file');
    expect(listFiles(srv.root)).toEqual(['incoming/log.csv', 'incoming/site-3/report.txt']);
  });

  it('recovers through the retry path when the server goes away and comes back on the same port', async () => {
    ws = createWorkspace();
    let srv = await server();
    ws.write('data/log.csv', 'first\n');
    master = new TaskMaster(
      // A connection the stopped server left half-open must time out quickly, not after 30 s.
      testConfig({ watch: [{ file: 'data/log.csv' }], transport: ftpConfig(srv), retry: { quickDelayMs: 50, longDelayMs: 200 }, operationTimeoutMs: 3000 }),
      { cwd: ws.dir },
    );
    const failures: unknown[] = [];
    master.on('upload-failed', (e) => failures.push(e));
    await master.start();
    const remote = path.join(srv.root, 'incoming/log.csv');
    await waitFor(() => sameBytes(ws.path('data/log.csv'), remote), 'first delivery');

    const { port, root } = srv;
    await srv.close();
    servers.splice(servers.indexOf(srv), 1);
    ws.append('data/log.csv', 'second\n');
    master.notify('data/log.csv');
    await waitFor(() => failures.length >= 2, 'failed tries while the server is down', 20_000);
    expect(fs.readFileSync(remote, 'utf8')).toBe('first\n');

    srv = await server({ port, root });
    await waitFor(() => sameBytes(ws.path('data/log.csv'), remote), 'delivery after the server came back', 15_000);
  });
});
