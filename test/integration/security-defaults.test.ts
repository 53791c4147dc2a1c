/**
 * Safe defaults, end to end through TaskMaster: an SFTP transport without `hostKey` or
 * `knownHosts` verifies the server against ~/.ssh/known_hosts (unknown or changed keys refused
 * with the fingerprint), and an FTP transport without `secure` insists on TLS: a server without
 * it never sees the password, and plain FTP needs `secure: false` and logs one warning.
 */
import fs from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';
import { afterEach, describe, expect, it } from 'vitest';
import { generateKeyPair, startEmbeddedSftpServer, type EmbeddedSftpServer } from '../../src/embedded/sftpServer.js';
import { TaskMaster } from '../../src/index.js';
import type { UploadFailedEvent } from '../../src/master/events.js';
import { startFtpServer, type TestFtpServer } from '../helpers/ftpServer.js';
import { crashWatch, logRecords } from '../helpers/hostile.js';
import { recordCount } from '../helpers/hostileCounts.js';
import { createWorkspace, nextEvent, sameBytes, testConfig, waitFor, type Workspace } from '../helpers/workspace.js';

let ws: Workspace;
let master: TaskMaster | null = null;
let sftpServer: EmbeddedSftpServer | null = null;
let ftpServer: TestFtpServer | null = null;
const savedHome = process.env.HOME;

afterEach(async () => {
  await master?.stop();
  master = null;
  await sftpServer?.close();
  sftpServer = null;
  await ftpServer?.close();
  ftpServer = null;
  process.env.HOME = savedHome;
  ws?.cleanup();
});

async function firstFailure(config: Parameters<typeof testConfig>[0]): Promise<UploadFailedEvent> {
  master = new TaskMaster(testConfig(config), { cwd: ws.dir });
  const failed = nextEvent<UploadFailedEvent>(master, 'upload-failed');
  await master.start();
  const event = await failed;
  await master.stop();
  master = null;
  return event;
}

describe('SFTP host keys are verified by default', () => {
  it('against ~/.ssh/known_hosts: unknown refused with the fingerprint, known accepted, changed refused', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'x\n');
    fs.mkdirSync(ws.path('server'), { recursive: true });
    fs.mkdirSync(ws.path('home/.ssh'), { recursive: true });
    process.env.HOME = ws.path('home'); // the subtask is forked with this environment
    const knownHosts = ws.path('home/.ssh/known_hosts');
    const hostKey = generateKeyPair();
    sftpServer = await startEmbeddedSftpServer({ root: ws.path('server'), username: 'u', password: 'pw-defaults', hostKey: hostKey.private });
    const config = {
      watch: [{ file: 'data/a.csv' }],
      transport: { type: 'sftp' as const, host: '127.0.0.1', port: sftpServer.port, username: 'u', password: 'pw-defaults', remoteDir: 'in' },
    };

    // No known_hosts file at all.
    let failure = await firstFailure(config);
    expect(failure.error.code).toBe('HOST_KEY_REJECTED');
    expect(failure.error.message).toContain(sftpServer.hostKeyFingerprint);
    expect(failure.error.message).toContain(knownHosts);
    expect(fs.existsSync(ws.path('server/in/a.csv'))).toBe(false);

    // A known_hosts that lists other hosts only.
    fs.writeFileSync(knownHosts, `[127.0.0.1]:1 ${sftpServer.hostPublicKey}\nexample.org ${sftpServer.hostPublicKey}\n`);
    failure = await firstFailure(config);
    expect(failure.error.message).toMatch(/is not in/);

    // Listed with another key of the same type: a changed key, refused loudly.
    const other = ssh2.utils.parseKey(generateKeyPair().public);
    if (other instanceof Error) throw other;
    fs.writeFileSync(knownHosts, `[127.0.0.1]:${sftpServer.port} ssh-ed25519 ${other.getPublicSSH().toString('base64')}\n`);
    failure = await firstFailure(config);
    expect(failure.error.code).toBe('HOST_KEY_REJECTED');
    expect(failure.error.message).toMatch(/CHANGED/);
    expect(fs.existsSync(ws.path('server/in/a.csv'))).toBe(false);

    // Listed with its key: delivered.
    fs.writeFileSync(knownHosts, `[127.0.0.1]:${sftpServer.port} ${sftpServer.hostPublicKey}\n`);
    master = new TaskMaster(testConfig(config), { cwd: ws.dir });
    await master.start();
    await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('server/in/a.csv')), 'delivery to the known host');
    await recordCount('defaults.sftpHostKeys', 4);
  });
});

describe('FTP uses TLS unless told otherwise', () => {
  it('without `secure`, a server without TLS is refused before the password is sent', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'x\n');
    fs.mkdirSync(ws.path('server'), { recursive: true });
    ftpServer = await startFtpServer({ root: ws.path('server'), tls: false });
    const failure = await firstFailure({
      watch: [{ file: 'data/a.csv' }],
      transport: { type: 'ftp', host: ftpServer.host, port: ftpServer.port, username: ftpServer.user, password: ftpServer.password, remoteDir: 'in' },
    });
    expect(failure.error.code).toBe('CONNECT_FAILED');
    expect(failure.error.message).toMatch(/does not offer TLS/);
    expect(failure.error.message).toMatch(/secure: false/);
    expect(ftpServer.commands.filter((command) => /^(USER|PASS)\b/.test(command))).toEqual([]);
    expect(fs.existsSync(ws.path('server/in/a.csv'))).toBe(false);
  });

  it('secure: false works and warns once (not once per connection) that the password travels in clear text', async () => {
    ws = createWorkspace();
    for (let i = 0; i < 8; i += 1) ws.write(`drop/f${i}.txt`, `file ${i}`);
    fs.mkdirSync(ws.path('server'), { recursive: true });
    ftpServer = await startFtpServer({ root: ws.path('server'), tls: false });
    master = new TaskMaster(
      testConfig({
        watch: [{ dir: 'drop', stableMs: 50 }],
        transport: { type: 'ftp', host: ftpServer.host, port: ftpServer.port, username: ftpServer.user, password: ftpServer.password, remoteDir: 'in', secure: false, transfers: 4 },
      }),
      { cwd: ws.dir },
    );
    await master.start();
    const crashes = crashWatch(master);
    await waitFor(() => [...Array(8).keys()].every((i) => sameBytes(ws.path(`drop/f${i}.txt`), ws.path(`server/in/f${i}.txt`))), 'delivery over plain FTP');
    const clearText = logRecords(master.config.log.subtaskFile).filter((r) => r.level === 40 && /clear text/.test(r.msg));
    expect(clearText).toHaveLength(1);
    expect(clearText[0]!.msg).not.toContain(ftpServer.password);
    crashes.assertStable();
    await recordCount('defaults.ftpTls', 2);
  });
});

describe('the subtask gets its configuration over IPC only', () => {
  it('its argv and environment hold no config value (paths, host, user, password)', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'x\n');
    fs.mkdirSync(ws.path('server'), { recursive: true });
    sftpServer = await startEmbeddedSftpServer({ root: ws.path('server'), username: 'ipc-only-user', password: 'ipc-only-password' });
    master = new TaskMaster(
      testConfig({
        watch: [{ file: 'data/a.csv' }],
        transport: { type: 'sftp', host: '127.0.0.1', port: sftpServer.port, username: 'ipc-only-user', password: 'ipc-only-password', remoteDir: 'in', hostKey: sftpServer.hostKeyFingerprint },
      }),
      { cwd: ws.dir },
    );
    await master.start();
    await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('server/in/a.csv')), 'delivery');
    const pid = master.subtaskPid!;
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
    for (const value of ['ipc-only-user', 'ipc-only-password', ws.dir, String(sftpServer.port)]) {
      expect(argv.join(' ')).not.toContain(value);
      expect(environ).not.toContain(value);
    }
    expect(path.basename(argv.find((arg) => /main\.(ts|js)$/.test(arg)) ?? '')).toMatch(/^main\.(ts|js)$/);
  });
});
