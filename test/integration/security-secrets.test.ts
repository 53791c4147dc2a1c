/**
 * Secrets never leak: real TaskMasters at log level `trace` (config and setLogLevel, so both
 * processes), with SFTP passwords, an encrypted private key and its passphrase, FTP passwords and
 * Dropbox refresh tokens and app secrets, made to fail (wrong password, wrong passphrase, refused
 * token, unreachable host) and to succeed. Then every place a secret could surface is searched
 * for each secret: `ps` output, /proc/<pid>/cmdline and /proc/<pid>/environ of the host process
 * and of the subtask, every file the agent wrote (logs, status.json, state.json, spool, pinned
 * host keys), and every event the master emitted.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PushtaskConfig } from '../../src/config/schema.js';
import { generateKeyPair, startEmbeddedSftpServer, type EmbeddedSftpServer } from '../../src/embedded/sftpServer.js';
import { TaskMaster } from '../../src/index.js';
import type { UploadFailedEvent } from '../../src/master/events.js';
import { freePort } from '../helpers/daemon.js';
import { FAKE_APP_KEY, FakeDropbox } from '../helpers/fakeDropbox.js';
import { startFtpServer, type TestFtpServer } from '../helpers/ftpServer.js';
import { crashWatch, logRecords } from '../helpers/hostile.js';
import { recordCount } from '../helpers/hostileCounts.js';
import { useTestCertificates } from '../helpers/tls.js';
import { createWorkspace, nextEvent, sameBytes, testConfig, waitFor, type Workspace } from '../helpers/workspace.js';

let ws: Workspace;
let masters: TaskMaster[] = [];
let sftpServer: EmbeddedSftpServer | null = null;
let ftpServer: TestFtpServer | null = null;
let dropbox: FakeDropbox | null = null;
const certs = useTestCertificates();

afterEach(async () => {
  for (const m of masters) await m.stop();
  masters = [];
  await sftpServer?.close();
  sftpServer = null;
  await ftpServer?.close();
  ftpServer = null;
  await dropbox?.close();
  dropbox = null;
  ws?.cleanup();
});

/** A fresh secret per run: found anywhere means leaked by this run. */
const secret = (kind: string) => `${kind}-${randomBytes(9).toString('base64url')}`;

/** Every event a master emits, as JSON, for the search. */
function recordEvents(m: TaskMaster): string[] {
  const seen: string[] = [];
  for (const name of ['uploaded', 'upload-failed', 'connected', 'disconnected', 'heartbeat', 'subtask-exit', 'subtask-start', 'notify', 'error'] as const) {
    m.on(name, (payload: unknown) => seen.push(`${name} ${payload instanceof Error ? `${payload.message}\n${payload.stack}` : JSON.stringify(payload)}`));
  }
  return seen;
}

/** Starts a master on the workspace with trace logs in both processes. */
async function startTracing(transport: PushtaskConfig['transport'], events: string[][], extra: Partial<PushtaskConfig> = {}): Promise<TaskMaster> {
  const m = new TaskMaster(
    testConfig({
      watch: [{ file: 'data/a.csv' }, { dir: 'drop', stableMs: 50 }],
      transport,
      spoolDir: 'spool',
      log: { dir: 'logs', level: 'trace', console: false },
      retry: { quickTries: 2, quickDelayMs: 50, longDelayMs: 150 },
      heartbeat: { intervalSec: 1, name: 'logger' },
      ...extra,
    }),
    { cwd: ws.dir },
  );
  masters.push(m);
  events.push(recordEvents(m));
  await m.start();
  m.setLogLevel('trace');
  return m;
}

async function stopAll(): Promise<void> {
  for (const m of masters) await m.stop({ forceKill: false });
  masters = [];
}

function readIfThere(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch {
    return Buffer.alloc(0);
  }
}

/** Where each secret was found ("<secret kind> in <place>"); empty when nowhere. */
function leaks(secrets: Record<string, string>, places: { pids: number[]; dirs: string[]; texts: string[] }): string[] {
  const haystacks: [string, Buffer][] = [['ps -eo pid,args', execFileSync('ps', ['-eo', 'pid,args'])]];
  for (const pid of places.pids) {
    haystacks.push([`/proc/${pid}/cmdline`, readIfThere(`/proc/${pid}/cmdline`)], [`/proc/${pid}/environ`, readIfThere(`/proc/${pid}/environ`)]);
  }
  for (const dir of places.dirs) {
    for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
      if (entry.isFile()) {
        const file = path.join(entry.parentPath, entry.name);
        // The agent is still running: a temporary snapshot may be renamed away since readdir.
        haystacks.push([file, readIfThere(file)]);
      }
    }
  }
  places.texts.forEach((text, index) => haystacks.push([`event ${index}`, Buffer.from(text)]));
  const found: string[] = [];
  for (const [kind, value] of Object.entries(secrets)) {
    for (const [place, content] of haystacks) if (content.includes(value)) found.push(`${kind} in ${place}`);
  }
  return found;
}

/** The files the agent writes: logs, spool (status, state, snapshots, pinned keys). */
function agentDirs(): string[] {
  return [ws.path('logs'), ws.path('spool')].filter((dir) => fs.existsSync(dir));
}

function prepareData(): void {
  ws.write('data/a.csv', 'time,value\n1,2\n');
  ws.write('drop/report.txt', 'dropped');
}

describe('secrets never leak', () => {
  it('SFTP: password, private key text and passphrase; wrong password, wrong passphrase, unreachable host, then success', async () => {
    ws = createWorkspace();
    prepareData();
    const secrets = { password: secret('sftp-password'), wrongPassword: secret('sftp-wrong'), passphrase: secret('passphrase'), wrongPassphrase: secret('wrong-passphrase') };
    const key = generateKeyPair({ passphrase: secrets.passphrase, cipher: 'aes256-ctr', rounds: 16 });
    const keyBody = key.private.split('\n').slice(1, -2).join('');
    const allSecrets = { ...secrets, keyMaterial: keyBody.slice(20, 80) };
    fs.mkdirSync(ws.path('server'), { recursive: true });
    sftpServer = await startEmbeddedSftpServer({ root: ws.path('server'), username: 'u', password: secrets.password, authorizedKey: key.public });
    const base = { type: 'sftp' as const, host: '127.0.0.1', port: sftpServer.port, username: 'u', remoteDir: 'in', hostKey: sftpServer.hostKeyFingerprint };
    const events: string[][] = [];
    const pids: number[] = [process.pid];

    // 1. Wrong password: AUTH_FAILED, retried on the long schedule.
    let m = await startTracing({ ...base, password: secrets.wrongPassword }, events);
    let failed = await nextEvent<UploadFailedEvent>(m, 'upload-failed');
    expect(failed.error.code).toBe('AUTH_FAILED');
    pids.push(m.subtaskPid!);
    expect(leaks(allSecrets, { pids, dirs: agentDirs(), texts: events.flat() })).toEqual([]);
    await stopAll();

    // 2. The right key with the wrong passphrase.
    m = await startTracing({ ...base, privateKey: key.private, passphrase: secrets.wrongPassphrase }, events);
    failed = await nextEvent<UploadFailedEvent>(m, 'upload-failed');
    expect(failed.error.message).toMatch(/passphrase|privateKey|key/i);
    pids.push(m.subtaskPid!);
    expect(leaks(allSecrets, { pids, dirs: agentDirs(), texts: events.flat() })).toEqual([]);
    await stopAll();

    // 3. Nothing listening on the port.
    m = await startTracing({ ...base, port: await freePort(), password: secrets.password }, events);
    failed = await nextEvent<UploadFailedEvent>(m, 'upload-failed');
    expect(failed.error.code).toBe('CONNECT_FAILED');
    pids.push(m.subtaskPid!);
    await stopAll();

    // 4. Key + passphrase that work, then the password: delivered.
    m = await startTracing({ ...base, privateKey: key.private, passphrase: secrets.passphrase }, events);
    const crashes = crashWatch(m);
    await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('server/in/a.csv')) && sameBytes(ws.path('drop/report.txt'), ws.path('server/in/report.txt')), 'delivery with the key');
    pids.push(m.subtaskPid!);
    expect(leaks(allSecrets, { pids, dirs: agentDirs(), texts: events.flat() })).toEqual([]);
    crashes.assertStable();
    await stopAll();

    // The subtask logged at trace level (the search looked at real, detailed logs).
    expect(logRecords(ws.path('logs/pushtask-subtask.log')).some((r) => r.level === 10 || r.level === 20)).toBe(true);
    expect(leaks(allSecrets, { pids, dirs: agentDirs(), texts: events.flat() })).toEqual([]);
    await recordCount('secrets.sftp', Object.keys(allSecrets).length);
  });

  it('FTPS: a wrong password, then the right one; status.json names the failure, never the password', async () => {
    ws = createWorkspace();
    prepareData();
    const password = secret('ftp-password');
    const wrong = secret('ftp-wrong');
    fs.mkdirSync(ws.path('server'), { recursive: true });
    ftpServer = await startFtpServer({ root: ws.path('server'), password });
    const base = { type: 'ftp' as const, host: ftpServer.host, port: ftpServer.port, username: ftpServer.user, remoteDir: 'in', tls: { ca: certs.caFile } };
    const events: string[][] = [];

    let m = await startTracing({ ...base, password: wrong }, events);
    const failed = await nextEvent<UploadFailedEvent>(m, 'upload-failed');
    expect(failed.error.code).toBe('AUTH_FAILED');
    const subtaskPid = m.subtaskPid!;
    await waitFor(() => fs.existsSync(ws.path('spool/status.json')) && fs.readFileSync(ws.path('spool/status.json'), 'utf8').includes('AUTH_FAILED'), 'status.json to show the failure');
    expect(leaks({ password, wrong }, { pids: [process.pid, subtaskPid], dirs: agentDirs(), texts: events.flat() })).toEqual([]);
    await stopAll();

    m = await startTracing({ ...base, password }, events);
    await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('server/in/a.csv')), 'delivery over FTPS');
    expect(leaks({ password, wrong }, { pids: [process.pid, m.subtaskPid!], dirs: agentDirs(), texts: events.flat() })).toEqual([]);
    await stopAll();
    expect(ftpServer.commands).toContain('PASS ***');
    await recordCount('secrets.ftp', 2);
  });

  it('Dropbox: a refused refresh token and app secret, then working ones', async () => {
    ws = createWorkspace();
    prepareData();
    const appSecret = secret('app-secret');
    dropbox = await FakeDropbox.start({ appSecret });
    const fake = dropbox;
    const wrongToken = secret('refresh-wrong');
    const wrongSecret = secret('app-secret-wrong');
    const base = { type: 'dropbox' as const, appKey: FAKE_APP_KEY, remoteDir: '/in', baseUrl: fake.url };
    const events: string[][] = [];
    const secrets = { refreshToken: fake.refreshToken, appSecret, wrongToken, wrongSecret };

    let m = await startTracing({ ...base, refreshToken: wrongToken, appSecret: wrongSecret }, events);
    const failed = await nextEvent<UploadFailedEvent>(m, 'upload-failed');
    expect(failed.error.code).toBe('AUTH_FAILED');
    expect(leaks(secrets, { pids: [process.pid, m.subtaskPid!], dirs: agentDirs(), texts: events.flat() })).toEqual([]);
    await stopAll();

    m = await startTracing({ ...base, refreshToken: fake.refreshToken, appSecret }, events);
    await waitFor(() => sameBytes(ws.path('data/a.csv'), fake.localPath('/in/a.csv')), 'delivery to Dropbox');
    expect(leaks(secrets, { pids: [process.pid, m.subtaskPid!], dirs: agentDirs(), texts: events.flat() })).toEqual([]);
    await stopAll();
    for (const request of fake.requests) expect(request.url).not.toContain(fake.refreshToken);
    await recordCount('secrets.dropbox', Object.keys(secrets).length);
  });
});
