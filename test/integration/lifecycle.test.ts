import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskMaster } from '../../src/index.js';
import type { NotifyEvent, SubtaskExitEvent, UploadedEvent } from '../../src/master/events.js';
import { startEmbeddedSftpServer } from '../../src/embedded/sftpServer.js';
import { startSlowLink } from '../helpers/slowLink.js';
import { createWorkspace, isAlive, nextEvent, sameBytes, testConfig, waitFor, type Workspace } from '../helpers/workspace.js';

let ws: Workspace;
const masters: TaskMaster[] = [];

afterEach(async () => {
  await Promise.all(masters.splice(0).map((m) => m.stop()));
  ws?.cleanup();
});

function newMaster(config: Parameters<typeof testConfig>[0]): TaskMaster {
  const master = new TaskMaster(testConfig(config), { cwd: ws.dir });
  masters.push(master);
  return master;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Pids of the live child processes of this process (the subtasks its TaskMasters forked). */
function childPids(): number[] {
  const pids: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces): state, ppid, ...
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(ppid) === process.pid && state !== 'Z') pids.push(Number(name));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

describe('burst mode end to end', () => {
  it('turns 200 notifies 20 ms apart into a few uploads and still delivers the final content', async () => {
    ws = createWorkspace();
    ws.write('data/burst.csv', 'seq\n');
    const m = newMaster({ watch: [{ file: 'data/burst.csv', burstMode: true }] });
    const uploads: UploadedEvent[] = [];
    const decisions: NotifyEvent[] = [];
    m.on('uploaded', (e) => uploads.push(e));
    m.on('notify', (e) => decisions.push(e));
    await m.start();
    await waitFor(() => uploads.length === 1, 'start-up delivery');
    uploads.length = 0;

    for (let seq = 0; seq < 200; seq += 1) {
      ws.append('data/burst.csv', `${seq}\n`);
      m.notify('data/burst.csv');
      await pause(20);
    }
    // The tail of the burst is flushed by the master's own timer (autoFlush), not by another notify.
    await waitFor(() => sameBytes(ws.path('data/burst.csv'), ws.path('remote/burst.csv')), 'final content delivered', 15_000);
    const passed = decisions.filter((d) => d.passed).length;
    expect(decisions.length).toBeGreaterThanOrEqual(200);
    expect(passed).toBeLessThanOrEqual(6);
    expect(uploads.length).toBeLessThanOrEqual(8);
    expect(decisions.some((d) => d.reason === 'burst-start')).toBe(true);
  });
});

describe('supervisor and crashes', () => {
  it('restarts a kill -9ed subtask and the delivered file ends byte-identical', async () => {
    ws = createWorkspace();
    ws.write('data/stream.csv', '');
    const m = newMaster({ watch: [{ file: 'data/stream.csv' }] });
    const exits: SubtaskExitEvent[] = [];
    m.on('subtask-exit', (e) => exits.push(e));
    await m.start();
    const firstPid = m.subtaskPid!;

    for (let row = 0; row < 150; row += 1) {
      ws.append('data/stream.csv', `${row},${'x'.repeat(200)}\n`);
      m.notify('data/stream.csv');
      if (row === 50) process.kill(firstPid, 'SIGKILL');
      await pause(10);
    }
    await waitFor(() => exits.length === 1 && m.subtaskPid !== undefined && m.subtaskPid !== firstPid, 'restart after the kill');
    expect(exits[0]).toMatchObject({ signal: 'SIGKILL', restarting: true, restartInMs: 1000 });
    await waitFor(() => sameBytes(ws.path('data/stream.csv'), ws.path('remote/stream.csv')), 'byte-identical after restart', 15_000);
    expect(isAlive(firstPid)).toBe(false);
  });

  it('delivers what changed while the agent was down (crash before upload) at the next start', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'v1\n');
    ws.write('data/old.csv', 'yesterday\n');
    const first = newMaster({ watch: [{ file: 'data/a.csv' }] });
    await first.start();
    await waitFor(
      () => sameBytes(ws.path('data/a.csv'), ws.path('remote/a.csv')) && sameBytes(ws.path('data/old.csv'), ws.path('remote/old.csv')),
      'first delivery',
    );
    // The ledger (state.json) is saved within half a second of the uploads.
    const ledger = path.join(first.config.spoolDir, 'state.json');
    await waitFor(() => fs.existsSync(ledger) && fs.readFileSync(ledger, 'utf8').includes('old.csv'), 'the ledger to record old.csv');
    await first.stop(); // = force kill
    ws.append('data/a.csv', 'v2 written while nobody watched\n');
    ws.write('data/new.csv', 'residual of the same type\n');

    const second = newMaster({ watch: [{ file: 'data/a.csv' }] });
    const uploaded: string[] = [];
    second.on('uploaded', (e) => uploaded.push(e.remotePath));
    await second.start();
    await waitFor(
      () => sameBytes(ws.path('data/a.csv'), ws.path('remote/a.csv')) && sameBytes(ws.path('data/new.csv'), ws.path('remote/new.csv')),
      'catch-up and residual delivery',
    );
    await pause(300);
    // old.csv was delivered unchanged by the first run as a residual: not sent again.
    expect(uploaded.filter((p) => p === 'old.csv')).toEqual([]);
  });

  it('keeps snapshots of a killed upload in the spool and delivers them after the next start', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'start\n');
    const config = { watch: [{ file: 'data/a.csv' }], transport: { type: 'local' as const, dir: 'remote' } };
    const first = newMaster(config);
    await first.start();
    await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('remote/a.csv')), 'first delivery');
    // Put a plain file where the destination folder was (permissions do not stop root), so the
    // next snapshot stays queued; then kill.
    fs.renameSync(ws.path('remote'), ws.path('remote.ok'));
    ws.write('remote', 'not a folder');
    await pause(100);
    ws.append('data/a.csv', 'queued\n');
    first.notify('data/a.csv');
    await nextEvent(first, 'upload-failed');
    await first.stop();
    const spooled = fs.readdirSync(first.config.spoolDir).filter((name) => name.endsWith('.snap'));
    expect(spooled).toHaveLength(1);
    fs.rmSync(ws.path('remote'));
    fs.renameSync(ws.path('remote.ok'), ws.path('remote'));

    const second = newMaster(config);
    await second.start({ uploadResiduals: false });
    await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('remote/a.csv')), 'delivery of the spooled snapshot');
    await waitFor(() => fs.readdirSync(second.config.spoolDir).every((name) => !name.endsWith('.snap')), 'spool drained');
  });
});

describe('temporary files left by a crash', () => {
  it('removes from the destination a copy whose temporary name a killed agent recorded in the spool', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'x');
    const stray = ws.write('remote/.a.csv.dead1.pushtask-tmp', 'half a copy');
    const bystander = ws.write('remote/.notes.pushtask-tmp.txt', 'not ours');
    ws.write('spool/00000000000000000000.1.remote-temps', `${JSON.stringify(stray)}\n${JSON.stringify(bystander)}\n`);
    const m = newMaster({ watch: [{ file: 'data/a.csv' }], spoolDir: 'spool' });
    await m.start();
    await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('remote/a.csv')), 'delivery');
    expect(fs.existsSync(stray)).toBe(false);
    expect(fs.existsSync(bystander)).toBe(true); // not one of our temporary names: never deleted
    expect(fs.readdirSync(ws.path('spool')).filter((name) => name.endsWith('.remote-temps'))).toEqual([]);
  });
});

describe('stop', () => {
  it('graceful stop lets the upload in flight finish; nothing partial is ever visible under the final name', async () => {
    ws = createWorkspace();
    // SFTP through a slow uplink: the upload takes about 4 s, so the stop surely comes while it is
    // in flight (a local copy could finish before status.json is next written).
    const server = await startEmbeddedSftpServer({ root: ws.path('server'), username: 'u', password: 'pw' });
    const link = await startSlowLink(server.port, 2 * 1024 * 1024);
    const big = Buffer.alloc(8 * 1024 * 1024, 1);
    ws.write('data/big.bin', big);
    const m = newMaster({
      watch: [{ file: 'data/big.bin' }],
      transport: { type: 'sftp', host: '127.0.0.1', port: link.port, username: 'u', password: 'pw', remoteDir: 'in', hostKey: server.hostKeyFingerprint },
      gracefulTimeoutMs: 60_000,
    });
    const statusFile = path.join(m.config.spoolDir, 'status.json');
    const target = ws.path('server/in/big.bin');
    let sawPartial = false;
    const watcher = setInterval(() => {
      if (fs.existsSync(target) && fs.statSync(target).size !== big.length) sawPartial = true;
    }, 2);
    try {
      await m.start({ uploadResiduals: false });
      await waitFor(() => fs.existsSync(statusFile) && JSON.parse(fs.readFileSync(statusFile, 'utf8')).inFlight.length === 1, 'upload in flight in status.json');
      await m.stop({ forceKill: false });
    } finally {
      clearInterval(watcher);
      await link.close();
      await server.close();
    }
    expect(sawPartial).toBe(false);
    expect(fs.statSync(target).size).toBe(big.length);
    expect(fs.readdirSync(ws.path('server/in'))).toEqual(['big.bin']);
  });

  it('graceful stop passes on data held by burst mode and delivers the queue before exiting', async () => {
    ws = createWorkspace();
    ws.write('data/held.csv', 'seq\n');
    for (let i = 0; i < 20; i += 1) ws.write(`drop/f${i}.txt`, `file ${i}`);
    const m = newMaster({ watch: [{ file: 'data/held.csv', burstMode: true }, { dir: 'drop', stableMs: 0 }], gracefulTimeoutMs: 30_000 });
    await m.start({ uploadResiduals: false });
    await waitFor(() => sameBytes(ws.path('data/held.csv'), ws.path('remote/held.csv')), 'first delivery');
    for (let seq = 0; seq < 5; seq += 1) {
      ws.append('data/held.csv', `${seq}\n`);
      m.notify('data/held.csv'); // quick notifies: held back by burst mode
    }
    await m.stop({ forceKill: false });
    expect(sameBytes(ws.path('data/held.csv'), ws.path('remote/held.csv'))).toBe(true);
    for (let i = 0; i < 20; i += 1) expect(sameBytes(ws.path(`drop/f${i}.txt`), ws.path(`remote/f${i}.txt`))).toBe(true);
  });

  it('stop() is idempotent, kills the subtask and a host process can exit afterwards', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'x');
    const script = ws.write(
      'host.mts',
      `import { TaskMaster } from ${JSON.stringify(pathToFileURL(path.resolve('src/index.ts')).href)};
const m = new TaskMaster({ watch: [{ file: 'data/a.csv', burstMode: true }], transport: { type: 'local', dir: 'remote' }, log: { console: false } });
await m.start();
m.notify('data/a.csv'); m.notify('data/a.csv'); m.notify('data/a.csv'); // leaves held data and a flush timer
console.log('pid', m.subtaskPid);
const a = m.stop(); const b = m.stop();
console.log('same', a === b);
await a;
`,
    );
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const child = spawn(process.execPath, ['--import', tsx, script], { cwd: ws.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (out += chunk));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(null);
      }, 15_000);
      child.on('exit', (exitCode) => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
    expect(out).toContain('same true');
    expect(code).toBe(0);
    const pid = Number(/pid (\d+)/.exec(out)?.[1]);
    expect(isAlive(pid)).toBe(false);
  });
});

describe('lifecycle races', () => {
  it('stop() right after start() cancels the start: no subtask, start() fails with ABORTED, later calls work', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'x');
    const m = newMaster({ watch: [{ file: 'data/a.csv' }] });
    const before = childPids();
    const start = m.start();
    const outcome = start.then(() => 'started', (error: { code?: string }) => error.code);
    await m.stop();
    expect(await outcome).toBe('ABORTED');
    expect(m.running).toBe(false);
    expect(m.subtaskPid).toBeUndefined();
    await pause(300);
    expect(childPids()).toEqual(before);
    await m.stop(); // a later stop() still works (and has nothing to do)
    // The spool lock was released: the same master starts again and delivers.
    await m.start();
    await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('remote/a.csv')), 'delivery after the cancelled start');
    const pid = m.subtaskPid!;
    await m.stop();
    expect(isAlive(pid)).toBe(false);
  });

  it('stop() while start() pre-copies residuals ends the pre-copy early and leaves no subtask', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'x');
    for (let i = 0; i < 3000; i += 1) ws.write(`data/r${i}.csv`, `residual ${i}\n`);
    const m = newMaster({ watch: [{ file: 'data/a.csv' }] });
    const before = childPids();
    const spooled = () => (fs.existsSync(m.config.spoolDir) ? fs.readdirSync(m.config.spoolDir).filter((name) => name.endsWith('.snap')).length : 0);
    const start = m.start();
    const outcome = start.then(() => 'started', (error: { code?: string }) => error.code);
    await waitFor(() => spooled() > 0, 'the pre-copy to begin', 20_000);
    await m.stop();
    expect(await outcome).toBe('ABORTED');
    expect(spooled()).toBeLessThan(3000); // cut short, not finished first
    await pause(300);
    expect(childPids()).toEqual(before);
    expect(m.running).toBe(false);
  });

  it('stop() while the subtask is starting kills it; start() fails with ABORTED', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'x');
    const m = newMaster({ watch: [{ file: 'data/a.csv' }] });
    const before = childPids();
    const start = m.start({ archiveExpired: false, uploadResiduals: false });
    const outcome = start.then(() => 'started', (error: { code?: string }) => error.code);
    let forked: number[] = [];
    await waitFor(() => (forked = childPids().filter((pid) => !before.includes(pid))).length > 0, 'the subtask to be forked', 20_000);
    await m.stop();
    expect(await outcome).toBe('ABORTED');
    for (const pid of forked) expect(isAlive(pid)).toBe(false);
    expect(m.running).toBe(false);
    await m.stop();
  });

  it('kills a restarted subtask that does not report ready in time and restarts it through the backoff', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'v1\n');
    const master = new TaskMaster(testConfig({ watch: [{ file: 'data/a.csv' }] }), { cwd: ws.dir, subtaskReadyTimeoutMs: 6000 });
    masters.push(master);
    const exits: SubtaskExitEvent[] = [];
    const restarts: number[] = [];
    master.on('subtask-exit', (e) => exits.push(e));
    master.on('subtask-start', (e) => e.restart && restarts.push(e.pid));
    await master.start();
    await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('remote/a.csv')), 'first delivery');
    // The next subtask hangs at start-up: reading its ledger blocks on a FIFO nobody writes to (as
    // on a stalled network file system).
    const ledger = path.join(master.config.spoolDir, 'state.json');
    process.kill(master.subtaskPid!, 'SIGKILL');
    await waitFor(() => exits.length === 1, 'the first exit');
    fs.rmSync(ledger, { force: true });
    execFileSync('mkfifo', [ledger]);
    await waitFor(() => exits.length === 2, 'the hung subtask to be killed', 20_000);
    expect(exits[1]).toMatchObject({ signal: 'SIGKILL', restarting: true, restartInMs: 2000 });
    const hung = exits[1]!.pid!;
    expect(isAlive(hung)).toBe(false);
    fs.rmSync(ledger);
    await waitFor(() => restarts.length === 1, 'a restart that reports ready', 20_000);
    expect(restarts[0]).not.toBe(hung);
    expect(master.running).toBe(true);
    ws.append('data/a.csv', 'v2\n');
    master.notify('data/a.csv');
    await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('remote/a.csv')), 'delivery after the restart');
  }, 60_000);

  it('releases every listener it added: 50 create/start/stop cycles in one process, no warning', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'x');
    // A host process of its own: vitest's worker has listeners and warnings of its own.
    const script = ws.write(
      'host.mts',
      `import { TaskMaster } from ${JSON.stringify(pathToFileURL(path.resolve('src/index.ts')).href)};
const warnings = [];
process.on('warning', (w) => warnings.push(w.name + ': ' + w.message));
const counts = () => JSON.stringify([process, process.stdout, process.stderr].map((e) => e.eventNames().map((n) => [String(n), e.listenerCount(n)])));
let before;
// Five hosts' worth at once, ten cycles each; console logging on (it writes to process.stderr).
async function lane(lane) {
  for (let i = 0; i < 10; i += 1) {
    const m = new TaskMaster({ watch: [{ file: 'data/a.csv' }], transport: { type: 'local', dir: 'remote' + lane },
      spoolDir: 'spool' + lane, log: { dir: 'logs' + lane, console: true, level: 'warn' } });
    await m.start({ archiveExpired: false, uploadResiduals: false });
    await m.stop();
    if (lane === 0 && i === 0) before = counts();
  }
}
await Promise.all([0, 1, 2, 3, 4].map(lane));
await new Promise((resolve) => setTimeout(resolve, 100));
console.log(JSON.stringify({ warnings, before, after: counts() }));
`,
    );
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const child = spawn(process.execPath, ['--import', tsx, script], { cwd: ws.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (err += chunk));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, err).toBe(0);
    const result = JSON.parse(out.trim().split('\n').at(-1)!) as { warnings: string[]; before: string; after: string };
    expect(result.warnings).toEqual([]);
    expect(err).not.toContain('MaxListenersExceededWarning');
    expect(result.after).toBe(result.before);
  }, 180_000);
});

describe('one agent per spool', () => {
  it('takes the spool over at once from a host that was kill -9ed, after its orphaned subtask left', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'x');
    const script = ws.write(
      'host.mts',
      `import { TaskMaster } from ${JSON.stringify(pathToFileURL(path.resolve('src/index.ts')).href)};
const m = new TaskMaster({ watch: [{ file: 'data/a.csv' }], transport: { type: 'local', dir: 'remote' }, log: { console: false } });
await m.start();
console.log('subtask', m.subtaskPid);
setInterval(() => undefined, 1000);
`,
    );
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const child = spawn(process.execPath, ['--import', tsx, script], { cwd: ws.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    await waitFor(() => /subtask \d+/.test(out), 'the host to start', 20_000);
    const orphan = Number(/subtask (\d+)/.exec(out)![1]);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));

    const started = Date.now();
    const next = newMaster({ watch: [{ file: 'data/a.csv' }] });
    await next.start();
    expect(Date.now() - started).toBeLessThan(8000); // not the 10 s staleness of the lock
    expect(isAlive(orphan)).toBe(false);
    expect(next.subtaskPid).not.toBe(orphan);
  });

  it('refuses a second TaskMaster on the same spool with a clear error, and allows it after stop', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'x');
    const first = newMaster({ watch: [{ file: 'data/a.csv' }] });
    await first.start();
    const second = newMaster({ watch: [{ file: 'data/a.csv' }] });
    await expect(second.start()).rejects.toThrow(/Another pushtask agent is already using the spool/);
    await first.stop();
    await second.start();
    expect(second.running).toBe(true);
  });
});
