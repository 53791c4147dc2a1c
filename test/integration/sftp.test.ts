// `.pushtask-spare.*` is the file a running agent keeps open for its next small upload
// (src/transports/sftpPipeline.ts), not a leftover: close() removes it (test/integration/sftp-pipeline.test.ts).
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startEmbeddedSftpServer, type EmbeddedSftpServer } from '../../src/embedded/sftpServer.js';
import { TaskMaster } from '../../src/index.js';
import type { UploadFailedEvent } from '../../src/master/events.js';
import type { PushtaskConfig } from '../../src/config/schema.js';
import { startSlowLink } from '../helpers/slowLink.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcpProxy.js';
import { createWorkspace, nextEvent, sameBytes, testConfig, waitFor, waitForIdle, type Workspace } from '../helpers/workspace.js';

const USER = 'logger';
const PASSWORD = 'correct horse battery staple';

let ws: Workspace;
let server: EmbeddedSftpServer;
let proxy: TcpProxy | null = null;
let master: TaskMaster | null = null;

beforeEach(async () => {
  ws = createWorkspace();
  fs.mkdirSync(ws.path('server'), { recursive: true });
  server = await startEmbeddedSftpServer({ root: ws.path('server'), username: USER, password: PASSWORD });
});

afterEach(async () => {
  await master?.stop();
  master = null;
  await proxy?.close();
  proxy = null;
  await server.close();
  ws.cleanup();
});

function sftp(overrides: Record<string, unknown> = {}): PushtaskConfig['transport'] {
  return {
    type: 'sftp',
    host: '127.0.0.1',
    port: server.port,
    username: USER,
    password: PASSWORD,
    remoteDir: 'incoming',
    hostKey: server.hostKeyFingerprint,
    ...overrides,
  } as PushtaskConfig['transport'];
}

function start(config: Parameters<typeof testConfig>[0]): TaskMaster {
  master = new TaskMaster(testConfig(config), { cwd: ws.dir });
  return master;
}

describe('sftp transport against a real SSH server', () => {
  it('delivers watched and drop-folder files byte-identical, in sub-folders, keeping the mtime', async () => {
    ws.write('data/a.csv', 'a,b\n1,2\n');
    ws.write('drop/deep/er/report.bin', Buffer.alloc(3 * 1024 * 1024, 9));
    const mtime = new Date(Math.floor(Date.now() / 1000) * 1000 - 3_600_000); // recent: older files get archived
    fs.utimesSync(ws.path('data/a.csv'), mtime, mtime);
    const m = start({ watch: [{ file: 'data/a.csv' }, { dir: 'drop', stableMs: 50 }], transport: sftp() });
    await m.start();
    await waitFor(
      () =>
        sameBytes(ws.path('data/a.csv'), ws.path('server/incoming/a.csv')) &&
        sameBytes(ws.path('drop/deep/er/report.bin'), ws.path('server/incoming/deep/er/report.bin')),
      'delivery over SFTP',
    );
    expect(fs.statSync(ws.path('server/incoming/a.csv')).mtime.getTime()).toBe(mtime.getTime());
    ws.append('data/a.csv', '3,4\n');
    m.notify('data/a.csv');
    await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('server/incoming/a.csv')), 'replacement over SFTP');
    await waitForIdle(m.config.spoolDir);
    const leftovers = fs.readdirSync(ws.path('server/incoming')).filter((name) => name.endsWith('.pushtask-tmp') && !name.startsWith('.pushtask-spare.'));
    expect(leftovers).toEqual([]);
  });

  it('replaces files on a server without posix-rename (remove + rename)', async () => {
    await server.close();
    server = await startEmbeddedSftpServer({ root: ws.path('server'), username: USER, password: PASSWORD, supportPosixRename: false });
    ws.write('data/a.csv', 'v1');
    const m = start({ watch: [{ file: 'data/a.csv' }], transport: sftp() });
    await m.start();
    await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('server/incoming/a.csv')), 'first upload');
    ws.write('data/a.csv', 'v2 longer');
    m.notify('data/a.csv');
    await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('server/incoming/a.csv')), 'replacement');
  });

  it('uploads independent drop-folder files over parallel connections (transfers)', async () => {
    for (let i = 0; i < 24; i += 1) ws.write(`drop/f${i}.bin`, Buffer.alloc(400_000, i));
    const m = start({ watch: [{ dir: 'drop', stableMs: 0 }], transport: sftp({ transfers: 4 }) });
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, server.connections)), 5);
    await m.start();
    await waitFor(() => fs.existsSync(ws.path('server/incoming')) && fs.readdirSync(ws.path('server/incoming')).filter((n) => n.endsWith('.bin')).length === 24, '24 files', 20_000);
    clearInterval(sampler);
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(4);
    for (let i = 0; i < 24; i += 1) expect(sameBytes(ws.path(`drop/f${i}.bin`), ws.path(`server/incoming/f${i}.bin`))).toBe(true);
  });
});

describe('sftp parallel folder creation', () => {
  it('parallel connections creating the same new remote folders do not fail uploads', async () => {
    for (let dir = 0; dir < 5; dir += 1) for (let i = 0; i < 4; i += 1) ws.write(`drop/new${dir}/f${i}.bin`, Buffer.alloc(50_000, i));
    const m = start({ watch: [{ dir: 'drop', stableMs: 0 }], transport: sftp({ transfers: 4 }) });
    const failures: UploadFailedEvent[] = [];
    m.on('upload-failed', (e) => failures.push(e));
    await m.start();
    await waitFor(() => {
      for (let dir = 0; dir < 5; dir += 1) for (let i = 0; i < 4; i += 1) if (!sameBytes(ws.path(`drop/new${dir}/f${i}.bin`), ws.path(`server/incoming/new${dir}/f${i}.bin`))) return false;
      return true;
    }, '20 files in 5 new folders', 20_000);
    expect(failures).toEqual([]);
  });
});

describe('sftp host keys and credentials', () => {
  it('refuses a server whose key does not match the pin, showing its fingerprint', async () => {
    ws.write('data/a.csv', 'x');
    const m = start({ watch: [{ file: 'data/a.csv' }], transport: sftp({ hostKey: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }) });
    const failed = nextEvent<UploadFailedEvent>(m, 'upload-failed');
    await m.start();
    const { error } = await failed;
    expect(error.code).toBe('HOST_KEY_REJECTED');
    expect(error.message).toContain(server.hostKeyFingerprint);
    expect(fs.existsSync(ws.path('server/incoming/a.csv'))).toBe(false);
  });

  it('refuses an unknown host by default (empty known_hosts) and accept-new pins it in the spool', async () => {
    ws.write('data/a.csv', 'x');
    ws.write('known_hosts', '');
    const m = start({ watch: [{ file: 'data/a.csv' }], transport: sftp({ hostKey: undefined, knownHosts: 'known_hosts' }) });
    const failed = nextEvent<UploadFailedEvent>(m, 'upload-failed');
    await m.start();
    expect((await failed).error).toMatchObject({ code: 'HOST_KEY_REJECTED' });
    expect((await failed).error.message).toContain('is not in');
    await m.stop();

    const pinned = start({ watch: [{ file: 'data/a.csv' }], transport: sftp({ hostKey: 'accept-new' }) });
    await pinned.start();
    await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('server/incoming/a.csv')), 'delivery after trusting on first use');
    expect(fs.readFileSync(path.join(pinned.config.spoolDir, 'known_hosts'), 'utf8')).toContain(`[127.0.0.1]:${server.port}`);
  });

  it('reports a wrong password as AUTH_FAILED without the password and retries it only on the long schedule', async () => {
    ws.write('data/a.csv', 'x');
    const secret = 'wrong-password-4711';
    const m = start({
      watch: [{ file: 'data/a.csv' }],
      transport: sftp({ password: secret }),
      retry: { quickTries: 5, quickDelayMs: 20, longDelayMs: 600 },
    });
    const failures: UploadFailedEvent[] = [];
    m.on('upload-failed', (e) => failures.push(e));
    await m.start();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(failures[0]?.error.code).toBe('AUTH_FAILED');
    expect(failures[0]?.error.message).toContain(USER);
    expect(JSON.stringify(failures)).not.toContain(secret);
    // Quick retries (20 ms) would make dozens of attempts; the long schedule makes two or three.
    expect(failures.length).toBeLessThanOrEqual(4);
    const status = fs.readFileSync(path.join(m.config.spoolDir, 'status.json'), 'utf8');
    expect(status).not.toContain(secret);
  });
});

describe('sftp under network faults', () => {
  it('never shows a partial file under the final name when connections are cut mid-upload, and delivers later', async () => {
    proxy = await startTcpProxy(server.port);
    const big = Buffer.alloc(8 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
    ws.write('data/big.bin', big);
    proxy.cutUpstreamAfter(2 * 1024 * 1024);
    const m = start({
      watch: [{ file: 'data/big.bin' }],
      transport: sftp({ port: proxy.port }),
      retry: { quickTries: 3, quickDelayMs: 100, longDelayMs: 300 },
    });
    const target = ws.path('server/incoming/big.bin');
    let sawPartial = false;
    const watcher = setInterval(() => {
      if (fs.existsSync(target) && fs.statSync(target).size !== big.length) sawPartial = true;
    }, 2);
    await m.start();
    await nextEvent(m, 'upload-failed');
    await nextEvent(m, 'upload-failed');
    expect(fs.existsSync(target)).toBe(false);
    proxy.cutUpstreamAfter(null);
    await waitFor(() => sameBytes(ws.path('data/big.bin'), target), 'delivery once the link holds', 20_000);
    clearInterval(watcher);
    expect(sawPartial).toBe(false);
    // The cut attempts' temporary files are removed over the connection that worked.
    expect(fs.readdirSync(ws.path('server/incoming')).filter((name) => name.endsWith('.pushtask-tmp') && !name.startsWith('.pushtask-spare.'))).toEqual([]);
  });

  it('leaves no temporary file after a kill in the middle of a small upload (stable temporary names per agent and file)', async () => {
    // 200 KiB is below the size whose temporary name is recorded in the spool: the same name, used
    // again by the upload after the restart, is what replaces the leftover.
    const link = await startSlowLink(server.port, 40 * 1024);
    ws.write('data/small.bin', Buffer.alloc(200 * 1024, 5));
    const m = start({ watch: [{ file: 'data/small.bin' }], transport: sftp({ port: link.port }) });
    const temporaries = () => (fs.existsSync(ws.path('server/incoming')) ? fs.readdirSync(ws.path('server/incoming')).filter((name) => name.endsWith('.pushtask-tmp')) : []);
    try {
      await m.start();
      await waitFor(() => temporaries().length === 1, 'the upload under way', 20_000);
      const [leftover] = temporaries();
      const restarted = nextEvent(m, 'subtask-start');
      process.kill(m.subtaskPid!, 'SIGKILL');
      await restarted;
      await waitFor(() => sameBytes(ws.path('data/small.bin'), ws.path('server/incoming/small.bin')), 'delivery after the restart', 30_000);
      expect(temporaries()).toEqual([]);
      expect(leftover).toMatch(/^\.small\.bin\.[0-9a-f]{12}\.pushtask-tmp$/);
    } finally {
      await link.close();
    }
  }, 45_000);

  it('removes the temporary file of an upload the agent was killed in the middle of, once it runs again', async () => {
    const link = await startSlowLink(server.port, 2 * 1024 * 1024);
    ws.write('data/big.bin', Buffer.alloc(6 * 1024 * 1024, 7));
    const m = start({ watch: [{ file: 'data/big.bin' }], transport: sftp({ port: link.port }) });
    const temporaries = () => (fs.existsSync(ws.path('server/incoming')) ? fs.readdirSync(ws.path('server/incoming')).filter((name) => name.endsWith('.pushtask-tmp') && !name.startsWith('.pushtask-spare.')) : []);
    try {
      await m.start();
      await waitFor(() => temporaries().length === 1, 'the upload under way');
      const restarted = nextEvent(m, 'subtask-start');
      process.kill(m.subtaskPid!, 'SIGKILL');
      await restarted;
      await waitFor(() => sameBytes(ws.path('data/big.bin'), ws.path('server/incoming/big.bin')), 'delivery after the restart', 20_000);
      expect(temporaries()).toEqual([]);
    } finally {
      await link.close();
    }
  });

  it('follows the retry schedule while the server refuses connections, then delivers', async () => {
    proxy = await startTcpProxy(server.port);
    proxy.refuse(true);
    ws.write('data/a.csv', 'waiting for the link');
    const m = start({
      watch: [{ file: 'data/a.csv' }],
      transport: sftp({ port: proxy.port }),
      retry: { quickTries: 3, quickDelayMs: 100, longDelayMs: 1200 },
    });
    const at: number[] = [];
    m.on('upload-failed', () => at.push(Date.now()));
    await m.start();
    await waitFor(() => at.length >= 5, 'five failed tries', 10_000);
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    // Failures 1 and 2 wait the quick delay; failure 3 ends a set and waits the long one.
    expect(gaps[0]).toBeLessThan(700);
    expect(gaps[1]).toBeLessThan(700);
    expect(gaps[2]).toBeGreaterThanOrEqual(1100);
    expect(gaps[3]).toBeLessThan(700);
    proxy.refuse(false);
    await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('server/incoming/a.csv')), 'delivery after the outage', 10_000);
  });
});
