/**
 * Append mode end to end (SPEC §7): thousands of appends with a notify after each, while links are
 * cut, servers restart and the subtask is killed at random moments (seeded; the seed is printed).
 * Afterwards every remote file equals its local file, and far fewer bytes were sent than whole-file
 * uploads would have sent.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PushtaskConfig } from '../../src/config/schema.js';
import { startEmbeddedSftpServer, type EmbeddedSftpServer } from '../../src/embedded/sftpServer.js';
import { TaskMaster } from '../../src/index.js';
import { runAppendWorkload, seededRandom, testSeed, waitForIdentical } from '../helpers/appendWorkload.js';
import { startFtpServer, type TestFtpServer } from '../helpers/ftpServer.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcpProxy.js';
import { removeTestCertificates, testCertificates } from '../helpers/tls.js';
import { createWorkspace, sameBytes, testConfig, waitFor, type Workspace } from '../helpers/workspace.js';

let ws: Workspace;
let master: TaskMaster | null = null;
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  await master?.stop();
  master = null;
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  ws?.cleanup();
});

interface Run {
  uploadedBytes: number;
  uploads: number;
  failures: number;
  restarts: number;
}

/** Starts a master whose upload counts survive restarts; `restart()` kill -9s the subtask and starts again. */
function agent(config: PushtaskConfig): { run: Run; current: () => TaskMaster; start: () => Promise<void>; crash: () => Promise<void> } {
  const run: Run = { uploadedBytes: 0, uploads: 0, failures: 0, restarts: 0 };
  const make = () => {
    const m = new TaskMaster(config, { cwd: ws.dir });
    m.on('uploaded', (event) => {
      run.uploadedBytes += event.bytes;
      run.uploads += 1;
    });
    m.on('upload-failed', () => {
      run.failures += 1;
    });
    master = m;
    return m;
  };
  make();
  return {
    run,
    current: () => master!,
    start: () => master!.start(),
    async crash() {
      const pid = master!.subtaskPid;
      if (pid) process.kill(pid, 'SIGKILL');
      await master!.stop();
      run.restarts += 1;
      await make().start();
    },
  };
}

function appendConfig(transport: PushtaskConfig['transport'], extra: Partial<PushtaskConfig> = {}): PushtaskConfig {
  return testConfig({
    watch: [
      { file: 'data/a.csv', mode: 'append' },
      { file: 'data/b.log', mode: 'append', burstMode: true },
    ],
    transport,
    retry: { quickTries: 3, quickDelayMs: 30, longDelayMs: 150 },
    ...extra,
  });
}

describe('append mode', () => {
  it('local: delivers exactly the local bytes through kill -9s and a rotation, sending mostly just the new bytes', async () => {
    ws = createWorkspace();
    const random = seededRandom(testSeed('append/local'));
    const files = [ws.write('data/a.csv', 'time,value\n'), ws.write('data/b.log', '')];
    const a = agent(appendConfig({ type: 'local', dir: 'remote' }));
    await a.start();
    const crashAt = new Set([150, 420, 700].map((step) => step + Math.floor(random() * 50)));
    const workload = await runAppendWorkload({
      master: a.current,
      files,
      steps: 1000,
      random,
      rotate: files[0],
      fault: async (step) => {
        if (crashAt.has(step)) await a.crash();
      },
    });
    a.current().checkPendingNotifications();
    await waitForIdentical(files, (file) => ws.path('remote', path.basename(file)));
    const finalBytes = files.reduce((sum, file) => sum + fs.statSync(file).size, 0);
    // Whole-file uploads would have sent about (uploads × average size); deltas send the appends,
    // plus the rotated file once more.
    expect(a.run.restarts).toBe(3);
    expect(a.run.uploadedBytes).toBeLessThan(workload.appendedBytes + finalBytes + 10_000);
    expect(a.run.uploads).toBeGreaterThan(20);
  }, 60_000);

  it('sftp: byte-identical after connections are cut at random byte counts and the subtask is killed', async () => {
    ws = createWorkspace();
    const random = seededRandom(testSeed('append/sftp'));
    fs.mkdirSync(ws.path('server'));
    const server: EmbeddedSftpServer = await startEmbeddedSftpServer({ root: ws.path('server'), username: 'u', password: 'pw' });
    cleanups.push(() => server.close());
    const proxy: TcpProxy = await startTcpProxy(server.port);
    cleanups.push(() => proxy.close());
    const files = [ws.write('data/a.csv', ''), ws.write('data/b.log', 'header\n')];
    const a = agent(
      appendConfig(
        { type: 'sftp', host: '127.0.0.1', port: proxy.port, username: 'u', password: 'pw', remoteDir: 'in', hostKey: server.hostKeyFingerprint },
        { operationTimeoutMs: 3000 },
      ),
    );
    await a.start();
    const crashAt = new Set([250, 600].map((step) => step + Math.floor(random() * 100)));
    const workload = await runAppendWorkload({
      master: a.current,
      files,
      steps: 1000,
      random,
      rotate: files[1],
      fault: async (step) => {
        const dice = random();
        if (dice < 0.02) proxy.cutAll();
        else if (dice < 0.04) proxy.cutUpstreamAfter(1 + Math.floor(random() * 4000));
        else if (dice < 0.1) proxy.cutUpstreamAfter(null);
        if (crashAt.has(step)) await a.crash();
      },
    });
    proxy.cutUpstreamAfter(null);
    a.current().checkPendingNotifications();
    await waitForIdentical(files, (file) => ws.path('server', 'in', path.basename(file)), 45_000);
    expect(fs.readdirSync(ws.path('server', 'in')).filter((name) => !name.endsWith('.pushtask-tmp')).sort()).toEqual(['a.csv', 'b.log']);
    const finalBytes = files.reduce((sum, file) => sum + fs.statSync(file).size, 0);
    expect(a.run.uploadedBytes).toBeLessThan(workload.appendedBytes + finalBytes + 10_000);
    expect(a.run.failures).toBeGreaterThan(0); // the cuts did hit uploads
  }, 90_000);

  it('ftp: byte-identical after the server restarts mid-stream and the subtask is killed', async () => {
    ws = createWorkspace();
    const random = seededRandom(testSeed('append/ftp'));
    const certs = await testCertificates();
    cleanups.push(async () => removeTestCertificates());
    fs.mkdirSync(ws.path('server'));
    let server: TestFtpServer = await startFtpServer({ root: ws.path('server') });
    cleanups.push(() => server.close());
    const files = [ws.write('data/a.csv', 'x\n'), ws.write('data/b.log', '')];
    const a = agent(
      appendConfig(
        {
          type: 'ftp',
          host: '127.0.0.1',
          port: server.port,
          username: server.user,
          password: server.password,
          remoteDir: 'in',
          tls: { ca: certs.caFile },
        } as PushtaskConfig['transport'],
        { operationTimeoutMs: 3000 },
      ),
    );
    await a.start();
    await runAppendWorkload({
      master: a.current,
      files,
      steps: 400,
      random,
      pauseMs: 4,
      rotate: files[0],
      fault: async (step) => {
        if (step === 120 || step === 300) {
          await server.close();
          server = await startFtpServer({ root: ws.path('server'), port: server.port });
        }
        if (step === 200) await a.crash();
      },
    });
    a.current().checkPendingNotifications();
    await waitForIdentical(files, (file) => ws.path('server', 'in', path.basename(file)), 45_000);
  }, 90_000);

  it('drop folder in append mode: a growing file is continued, not re-sent', async () => {
    ws = createWorkspace();
    ws.write('drop/sub/growing.csv', 'start\n');
    const m = new TaskMaster(testConfig({ watch: [{ dir: 'drop', mode: 'append', stableMs: 30 }] }), { cwd: ws.dir });
    master = m;
    const sizes: number[] = [];
    m.on('uploaded', (event) => sizes.push(event.bytes));
    await m.start();
    const remote = ws.path('remote', 'sub', 'growing.csv');
    await waitFor(() => sameBytes(ws.path('drop/sub/growing.csv'), remote) && sizes.length === 1, 'first delivery');
    for (let round = 0; round < 5; round += 1) {
      ws.append('drop/sub/growing.csv', `${'y'.repeat(1000)}\n`);
      await waitFor(() => sameBytes(ws.path('drop/sub/growing.csv'), remote) && sizes.length === round + 2, `round ${round}`);
    }
    expect(sizes).toEqual([6, 1001, 1001, 1001, 1001, 1001]);
  });
});
