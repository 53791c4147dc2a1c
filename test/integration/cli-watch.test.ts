/**
 * `pushtask watch` and `pushtask status` as real processes against the embedded SFTP server:
 * delivery, graceful and bounded stops with nothing lost, status.json against what is really
 * queued, and --dry-run.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateHostKey, startEmbeddedSftpServer, type EmbeddedSftpServer } from '../../src/embedded/sftpServer.js';
import type { AgentStatus } from '../../src/subtask/status.js';
import { fingerprintOf } from '../../src/transports/sshHostKeys.js';
import { runCli, startCli, type RunningCli } from '../helpers/cli.js';
import { freePort } from '../helpers/daemon.js';
import { startSlowLink, type SlowLink } from '../helpers/slowLink.js';
import { createWorkspace, isAlive, sameBytes, waitFor, type Workspace } from '../helpers/workspace.js';

const MiB = 1024 * 1024;
const PASSWORD = 'watch-test-Pa55word';
const HOST_KEY = generateHostKey();
const HOST_KEY_FINGERPRINT = fingerprintOfPrivateKey(HOST_KEY);

function fingerprintOfPrivateKey(key: string): string {
  const parsed = ssh2.utils.parseKey(key);
  if (parsed instanceof Error || Array.isArray(parsed)) throw new Error('cannot parse the test host key');
  return fingerprintOf(parsed.getPublicSSH());
}
const env = { ...process.env, TEST_SFTP_PASSWORD: PASSWORD };

let ws: Workspace;
let server: EmbeddedSftpServer | null = null;
let link: SlowLink | null = null;
const processes: RunningCli[] = [];

beforeEach(() => {
  ws = createWorkspace('pushtask-watch-');
  fs.mkdirSync(ws.path('drop'));
});

afterEach(async () => {
  for (const running of processes.splice(0)) {
    running.child.kill('SIGKILL');
    await running.done;
  }
  await link?.close();
  link = null;
  await server?.close();
  server = null;
  ws.cleanup();
});

async function startServer(port = 0): Promise<EmbeddedSftpServer> {
  server = await startEmbeddedSftpServer({ root: ws.path('server'), username: 'logger', password: PASSWORD, hostKey: HOST_KEY, port });
  return server;
}

/** A config file for the drop folder `drop/`, delivering over SFTP to `port` (the password from the environment). */
function writeConfig(port: number, fingerprint: string, extra = ''): void {
  ws.write(
    'pushtask.config.ts',
    `export default {
  watch: [{ dir: 'drop', stableMs: 100 }],
  transport: { type: 'sftp', host: '127.0.0.1', port: ${port}, username: 'logger', password: process.env.TEST_SFTP_PASSWORD,
               hostKey: '${fingerprint}', remoteDir: 'in', transfers: 1 },
  intervalMs: 200,
  retry: { quickTries: 100, quickDelayMs: 200 },
  log: { console: false },
  ${extra}
};
`,
  );
}

function watch(): RunningCli {
  const running = startCli(['watch', '--config', 'pushtask.config.ts'], { cwd: ws.dir, env });
  processes.push(running);
  return running;
}

async function statusJson(): Promise<AgentStatus> {
  const run = await runCli(['status', '--config', 'pushtask.config.ts', '--json'], { cwd: ws.dir, env });
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout) as AgentStatus;
}

function dropFile(name: string, bytes: number): string {
  const temp = ws.write(`drop/${name}.part`, Buffer.alloc(bytes, name.charCodeAt(0)));
  fs.renameSync(temp, ws.path('drop', name));
  return ws.path('drop', name);
}

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Hashes of every file below `dir` (the spool's snapshots among them, whatever they are called). */
function hashesBelow(dir: string): Set<string> {
  const hashes = new Set<string>();
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) hashes.add(sha(fs.readFileSync(path.join(entry.parentPath, entry.name))));
  }
  return hashes;
}

describe('pushtask watch', { timeout: 60_000 }, () => {
  it('delivers dropped files; SIGTERM lets the queue finish and exits 0 with nothing lost', async () => {
    await startServer();
    link = await startSlowLink(server!.port, 4 * MiB);
    writeConfig(link.port, server!.hostKeyFingerprint);
    const running = watch();
    await running.waitForOutput('Ctrl-C stops');
    const names = ['a.bin', 'b.bin', 'c.bin', 'd.bin', 'e.bin'];
    const files = names.map((name) => dropFile(name, MiB));
    await waitFor(() => fs.existsSync(ws.path('server/in/a.bin')), 'the first delivery', 20_000);

    const stopAsked = Date.now();
    running.child.kill('SIGTERM');
    const run = await running.done;
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/SIGTERM: stopping gracefully[^]*\nstopped\n$/);
    // The queue (at most ~1 s over the slow link) was delivered within gracefulTimeoutMs (10 s).
    expect(Date.now() - stopAsked).toBeLessThan(10_000);
    for (const [index, name] of names.entries()) expect(sameBytes(files[index]!, ws.path('server/in', name))).toBe(true);

    const status = await statusJson();
    expect(status.running).toBe(false);
    expect(status.queue).toEqual({ length: 0, bytes: 0, items: [] });
    expect(status.counters.uploads).toBe(5);
    for (const [index, name] of names.entries()) expect(status.files[files[index]!]?.lastUpload).toMatchObject({ remotePath: name, bytes: MiB });
  });

  it('a stop is bounded by gracefulTimeoutMs; the cut upload stays in the spool and is delivered at the next start', async () => {
    await startServer();
    link = await startSlowLink(server!.port, 0.5 * MiB);
    writeConfig(link.port, server!.hostKeyFingerprint, 'gracefulTimeoutMs: 1000,');
    const first = watch();
    await first.waitForOutput('Ctrl-C stops');
    const file = dropFile('big.bin', 8 * MiB); // about 16 s over this link
    await waitFor(() => fs.existsSync(path.join(ws.dir, 'drop/upload/sftp/status.json')) && readStatus().inFlight.length === 1, 'the upload to start', 20_000);

    const stopAsked = Date.now();
    first.child.kill('SIGTERM');
    const run = await first.done;
    expect(run.code).toBe(0);
    // gracefulTimeoutMs, then SIGTERM to the subtask and SIGKILL 2 s later at most.
    expect(Date.now() - stopAsked).toBeLessThan(8000);
    expect(fs.existsSync(ws.path('server/in/big.bin'))).toBe(false);
    expect(hashesBelow(ws.path('drop/upload/sftp'))).toContain(sha(fs.readFileSync(file)));

    // Next start, over a fast link: the spooled snapshot goes first.
    writeConfig(server!.port, server!.hostKeyFingerprint);
    const second = watch();
    await waitFor(() => sameBytes(file, ws.path('server/in/big.bin')), 'delivery after the restart', 30_000);
    second.child.kill('SIGTERM');
    expect((await second.done).code).toBe(0);
  });

  it('status --json matches what is really queued in the spool, while the agent runs and after it stopped', async () => {
    const port = await freePort(); // nothing listens yet: every upload waits in the spool
    writeConfig(port, HOST_KEY_FINGERPRINT);

    const running = watch();
    await running.waitForOutput('Ctrl-C stops');
    const sizes = { 'one.csv': 1000, 'two.csv': 2000, 'three.csv': 3000 };
    const files = Object.entries(sizes).map(([name, bytes]) => dropFile(name, bytes));
    await waitFor(() => readStatus().queue.length === 3 && readStatus().lastError !== null, 'three queued files and a connection error', 20_000);

    const queued = await statusJson();
    expect(queued.running).toBe(true);
    expect(isAlive(queued.pid)).toBe(true);
    expect(queued.queue.length).toBe(3);
    expect(queued.queue.bytes).toBe(6000);
    expect(new Set(queued.queue.items.map((item) => item.file))).toEqual(new Set(files));
    expect(queued.inFlight).toEqual([]);
    expect(['connecting', 'waiting-to-retry']).toContain(queued.connection.state);
    expect(queued.lastError).toMatchObject({ code: 'CONNECT_FAILED', message: expect.stringContaining(`127.0.0.1:${port}`) });
    // The snapshots it lists are really in the spool, byte for byte.
    const spooled = hashesBelow(ws.path('drop/upload/sftp'));
    for (const file of files) expect(spooled).toContain(sha(fs.readFileSync(file)));

    const human = await runCli(['status', '--config', 'pushtask.config.ts'], { cwd: ws.dir, env });
    expect(human.stdout).toMatch(/Queue: +3 file\(s\), 5\.9 KiB/);
    expect(human.stdout).toMatch(/Last error: .*CONNECT_FAILED/);
    expect(human.stdout + human.stderr + JSON.stringify(queued)).not.toContain(PASSWORD);

    await startServer(port); // the server comes up: the queue drains
    await waitFor(() => files.every((file) => sameBytes(file, ws.path('server/in', path.basename(file)))), 'the queue to be delivered', 30_000);
    await waitFor(() => readStatus().queue.length === 0 && readStatus().counters.uploads === 3, 'status.json to catch up');
    const delivered = await statusJson();
    expect(delivered.connection.state).toBe('connected');
    for (const file of files) expect(delivered.files[file]?.lastUpload?.remotePath).toBe(path.basename(file));

    running.child.kill('SIGTERM');
    expect((await running.done).code).toBe(0);
    const stopped = await statusJson();
    expect(stopped.running).toBe(false);
    expect(stopped.queue.length).toBe(0);
  });
});

describe('pushtask watch --dry-run', { timeout: 60_000 }, () => {
  it('shows the plan, connects and lists once, uploads nothing and creates no spool', async () => {
    await startServer();
    fs.mkdirSync(ws.path('server/in'), { recursive: true });
    fs.writeFileSync(ws.path('server/in/already.txt'), 'x');
    writeConfig(server!.port, server!.hostKeyFingerprint);
    dropFile('waiting.csv', 10);
    const run = await runCli(['watch', '--config', 'pushtask.config.ts', '--dry-run'], { cwd: ws.dir, env });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/pushtask\.config\.ts is valid/);
    expect(run.stdout).toMatch(/\[0\] drop folder drop\/ \(exists, 1 entry\)/);
    expect(run.stdout).toMatch(new RegExp(`Uploading to: sftp logger@127\\.0\\.0\\.1:${server!.port} in`));
    expect(run.stdout).toMatch(/Spool: +drop\/upload\/sftp \(created at start\)/);
    expect(run.stdout).toMatch(/Connecting to sftp:\/\/logger@127\.0\.0\.1:\d+\/in \.\.\. ok \(\d+ ms\); the remote folder holds 1 entry/);
    expect(run.stdout).not.toContain(PASSWORD);
    expect(fs.readdirSync(ws.path('server/in'))).toEqual(['already.txt']);
    expect(fs.existsSync(ws.path('drop/upload'))).toBe(false);
  });

  it('exits 1 naming the host when the connection fails, and 1 naming the field for an invalid config', async () => {
    const port = await freePort();
    writeConfig(port, 'SHA256:AAAA');
    const unreachable = await runCli(['watch', '--config', 'pushtask.config.ts', '--dry-run'], { cwd: ws.dir, env });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stdout).toMatch(/\.\.\. FAILED\n$/);
    expect(unreachable.stderr).toMatch(new RegExp(`pushtask: Cannot connect to SFTP server 127\\.0\\.0\\.1:${port}: .*\\nThe agent would keep retrying`));
    expect(unreachable.stdout + unreachable.stderr).not.toContain(PASSWORD);

    ws.write('bad.config.ts', "export default { watch: [{ dir: 'drop' }], transport: { type: 'sftp', host: 'h', username: 'u', port: 70000 } };\n");
    const invalid = await runCli(['watch', '--config', 'bad.config.ts', '--dry-run'], { cwd: ws.dir, env });
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toMatch(/Invalid pushtask configuration in .*bad\.config\.ts:\n {2}- transport\.port: .*given 70000/);
  });
});

function readStatus(): AgentStatus {
  return JSON.parse(fs.readFileSync(ws.path('drop/upload/sftp/status.json'), 'utf8')) as AgentStatus;
}
