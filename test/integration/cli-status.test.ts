/**
 * `pushtask status` against the real state of a running and a stopped `pushtask watch`, and
 * `pushtask watch --dry-run`, as real processes against the embedded SFTP server.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/daemon.js';
import { PASSWORD, WatchFixture, sha256 } from '../helpers/watchFixture.js';
import { isAlive, sameBytes, waitFor } from '../helpers/workspace.js';

let f: WatchFixture;

beforeEach(() => {
  f = new WatchFixture();
});

afterEach(async () => {
  await f.cleanup();
});

describe('pushtask status', { timeout: 60_000 }, () => {
  it('--json matches what is really queued in the spool, while the agent runs and after it stopped', async () => {
    const port = await freePort(); // nothing listens yet: every upload waits in the spool
    f.writeConfig(port);
    const running = f.watch();
    await running.waitForOutput('Ctrl-C stops');
    const sizes = { 'one.csv': 1000, 'two.csv': 2000, 'three.csv': 3000 };
    const files = Object.entries(sizes).map(([name, bytes]) => f.dropFile(name, bytes));
    await waitFor(() => f.readStatus()?.queue.length === 3 && f.readStatus()?.lastError !== null, 'three queued files and a connection error', 20_000);

    const queued = await f.statusJson();
    expect(queued.running).toBe(true);
    expect(isAlive(queued.pid)).toBe(true);
    expect(queued.queue.length).toBe(3);
    expect(queued.queue.bytes).toBe(6000);
    expect(new Set(queued.queue.items.map((item) => item.file))).toEqual(new Set(files));
    expect(queued.inFlight).toEqual([]);
    expect(['connecting', 'waiting-to-retry']).toContain(queued.connection.state);
    expect(queued.lastError).toMatchObject({ code: 'CONNECT_FAILED', message: expect.stringContaining(`127.0.0.1:${port}`) });
    // The snapshots it lists are really in the spool, byte for byte.
    const spooled = f.hashesBelow('drop/upload/sftp');
    for (const file of files) expect(spooled).toContain(sha256(fs.readFileSync(file)));

    const human = await f.run(['status', '--config', 'pushtask.config.ts']);
    expect(human.stdout).toMatch(/Queue: +3 file\(s\), 5\.9 KiB/);
    expect(human.stdout).toMatch(/Last error: .*CONNECT_FAILED/);
    expect(human.stdout).toMatch(/Heartbeat: +off/);
    expect(human.stdout + human.stderr + JSON.stringify(queued)).not.toContain(PASSWORD);

    await f.startServer(port); // the server comes up: the queue drains
    await waitFor(() => files.every((file) => sameBytes(file, f.ws.path('server/in', path.basename(file)))), 'the queue to be delivered', 30_000);
    await waitFor(() => f.readStatus()?.queue.length === 0 && f.readStatus()?.counters.uploads === 3, 'status.json to catch up');
    const delivered = await f.statusJson();
    expect(delivered.connection.state).toBe('connected');
    for (const file of files) expect(delivered.files[file]?.lastUpload?.remotePath).toBe(path.basename(file));

    running.child.kill('SIGTERM');
    expect((await running.done).code).toBe(0);
    const stopped = await f.statusJson();
    expect(stopped.running).toBe(false);
    expect(stopped.queue.length).toBe(0);
  });
});

describe('pushtask watch --dry-run', { timeout: 60_000 }, () => {
  it('shows the plan, connects and lists once, uploads nothing and creates no spool', async () => {
    const server = await f.startServer();
    fs.mkdirSync(f.ws.path('server/in'), { recursive: true });
    fs.writeFileSync(f.ws.path('server/in/already.txt'), 'x');
    f.writeConfig(server.port);
    f.dropFile('waiting.csv', 10);
    const run = await f.run(['watch', '--config', 'pushtask.config.ts', '--dry-run']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/pushtask\.config\.ts is valid/);
    expect(run.stdout).toMatch(/\[0\] drop folder drop\/ \(exists, 1 entry\)/);
    expect(run.stdout).toMatch(new RegExp(`Uploading to: sftp logger@127\\.0\\.0\\.1:${server.port} in`));
    expect(run.stdout).toMatch(/Spool: +drop\/upload\/sftp \(created at start\)/);
    expect(run.stdout).toMatch(/Connecting to sftp:\/\/logger@127\.0\.0\.1:\d+\/in \.\.\. ok \(\d+ ms\)\nRemote folder: exists, 1 entry\nWrite permission: ok \(in has mode 7\d\d/);
    expect(run.stdout).not.toContain(PASSWORD);
    expect(fs.readdirSync(f.ws.path('server/in'))).toEqual(['already.txt']);
    expect(fs.existsSync(f.ws.path('drop/upload'))).toBe(false);
  });

  it('reports a remote folder that does not exist yet as "will be created" and exits 0, creating nothing', async () => {
    const server = await f.startServer();
    f.writeConfig(server.port);
    f.dropFile('waiting.csv', 10);
    const run = await f.run(['watch', '--config', 'pushtask.config.ts', '--dry-run']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/Remote folder: does not exist yet: it will be created by the first upload\nWrite permission: ok \(the nearest existing folder, \., has mode 7\d\d/);
    expect(fs.readdirSync(f.ws.path('server'))).toEqual([]);
    expect(fs.existsSync(f.ws.path('drop/upload'))).toBe(false);
    expect(fs.existsSync(f.ws.path('logs'))).toBe(false);

    // A folder nobody may write to (by its mode bits: SFTP cannot ask without writing) fails the check.
    fs.chmodSync(f.ws.path('server'), 0o555);
    try {
      const locked = await f.run(['watch', '--config', 'pushtask.config.ts', '--dry-run']);
      expect(locked.code).toBe(1);
      expect(locked.stdout).toMatch(/Write permission: FAILED \(the nearest existing folder, \., has mode 555 \(owner uid \d+\): nobody may write there\)/);
      expect(locked.stderr).toMatch(/cannot be written to/);
    } finally {
      fs.chmodSync(f.ws.path('server'), 0o755);
    }
  });

  it('writes nothing for the local transport either (its folder is not created), and refuses a folder nobody may write', async () => {
    f.ws.write('local.config.ts', "export default { watch: [{ dir: 'outbox', create: true }], transport: { type: 'local', dir: 'out/site-7' }, log: { console: false } };\n");
    const run = await f.run(['watch', '--config', 'local.config.ts', '--dry-run']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/\[0\] drop folder outbox\/ \(does not exist: created at start\)/);
    expect(run.stdout).toMatch(/Remote folder: does not exist yet: it will be created by the first upload\nWrite permission: ok/);
    expect(fs.readdirSync(f.ws.dir).sort()).toEqual(['drop', 'local.config.ts']);

    if (process.getuid?.() === 0) {
      console.log('Skipping the local "NOT writable" case: running as root, which may write anywhere (the SFTP case above covers the refusal)');
      return;
    }
    fs.mkdirSync(f.ws.path('locked'), { mode: 0o555 });
    f.ws.write('locked.config.ts', "export default { watch: [{ dir: 'drop', create: true }], transport: { type: 'local', dir: 'locked/out' } };\n");
    const locked = await f.run(['watch', '--config', 'locked.config.ts', '--dry-run']);
    expect(locked.code).toBe(1);
    expect(locked.stdout).toMatch(/Write permission: FAILED \(the nearest existing folder, .*locked, is NOT writable by this user\)/);
  });

  it('exits 1 for a drop folder that does not exist and may not be created, naming the field', async () => {
    f.ws.write('typo.config.ts', "export default { watch: [{ dir: 'dorp' }], transport: { type: 'local', dir: 'out' } };\n");
    const run = await f.run(['watch', '--config', 'typo.config.ts', '--dry-run']);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/\[0\] drop folder dorp\/ \(does NOT exist\)/);
    expect(run.stderr).toMatch(/the agent would not start:\n {2}- watch\.0\.dir: the drop folder .*dorp does not exist \(a typo\?\)/);
    expect(fs.existsSync(f.ws.path('dorp'))).toBe(false);
  });

  it('exits 1 naming the host when the connection fails, and 1 naming the field for an invalid config', async () => {
    const port = await freePort();
    f.writeConfig(port);
    const unreachable = await f.run(['watch', '--config', 'pushtask.config.ts', '--dry-run']);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stdout).toMatch(/\.\.\. FAILED\n$/);
    expect(unreachable.stderr).toMatch(new RegExp(`pushtask: Cannot connect to SFTP server 127\\.0\\.0\\.1:${port}: .*\\nThe agent would keep retrying`));
    expect(unreachable.stdout + unreachable.stderr).not.toContain(PASSWORD);

    f.ws.write('bad.config.ts', "export default { watch: [{ dir: 'drop' }], transport: { type: 'sftp', host: 'h', username: 'u', port: 70000 } };\n");
    const invalid = await f.run(['watch', '--config', 'bad.config.ts', '--dry-run']);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toMatch(/Invalid pushtask configuration in .*bad\.config\.ts:\n {2}- transport\.port: .*given 70000/);
  });
});
