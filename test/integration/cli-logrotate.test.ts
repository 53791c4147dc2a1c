/**
 * logrotate and `pushtask watch` (issue 13): after the log files are moved away, SIGUSR1 makes
 * the running agent — the watch process and its subtask — write to new files under the old names.
 * A real `pushtask watch` process and the embedded SFTP server.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WatchFixture } from '../helpers/watchFixture.js';
import { waitFor } from '../helpers/workspace.js';

let f: WatchFixture;
beforeEach(() => {
  f = new WatchFixture();
});
afterEach(async () => {
  await f.cleanup();
});

const messages = (file: string) =>
  fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => (JSON.parse(line) as { msg: string }).msg)
    : [];

describe('SIGUSR1', { timeout: 60_000 }, () => {
  it('reopens the master and subtask log files after logrotate moved them, and never ends the process', async () => {
    const server = await f.startServer();
    f.writeConfig(server.port);
    const running = f.watch();
    await running.waitForOutput('Ctrl-C stops');
    const master = f.ws.path('logs/pushtask-master.log');
    const subtask = f.ws.path('logs/pushtask-subtask.log');
    await waitFor(() => messages(subtask).some((msg) => msg.startsWith('Subtask started')), 'the subtask log');

    // What logrotate does (without copytruncate): move the files, then signal.
    fs.renameSync(master, `${master}.1`);
    fs.renameSync(subtask, `${subtask}.1`);
    running.child.kill('SIGUSR1');
    await waitFor(() => messages(master).includes('SIGUSR1: log files reopened'), 'a new master log');
    await waitFor(() => messages(subtask).includes('Log files reopened (SIGUSR1)'), 'a new subtask log');

    f.dropFile('after-rotation.csv', 100);
    await waitFor(() => messages(subtask).some((msg) => /^Uploaded .*after-rotation\.csv/.test(msg)), 'the upload logged in the new file', 20_000);
    expect(messages(`${subtask}.1`).some((msg) => msg.includes('after-rotation'))).toBe(false);
    expect(running.child.exitCode).toBeNull();
    expect(fs.statSync(master).mode & 0o777).toBe(0o600);
  });

  it('works with logrotate itself, configured as deploy/logrotate.conf says', async () => {
    const logrotate = ['/usr/sbin/logrotate', '/usr/bin/logrotate'].find((file) => fs.existsSync(file));
    if (!logrotate) {
      console.log('Skipping the logrotate run: logrotate is not installed (apt-get install logrotate; .ci/run installs it)');
      return;
    }
    const server = await f.startServer();
    f.writeConfig(server.port, 'log: { console: false, maxBytes: 0 },');
    const running = f.watch();
    await running.waitForOutput('Ctrl-C stops');
    const subtask = f.ws.path('logs/pushtask-subtask.log');
    await waitFor(() => messages(subtask).some((msg) => msg.startsWith('Subtask started')), 'the subtask log');
    // deploy/logrotate.conf with this workspace's paths, and a kill of this watch for systemctl's.
    const shipped = fs.readFileSync('deploy/logrotate.conf', 'utf8');
    const conf = shipped
      .replaceAll('/var/log/pushtask/', `${f.ws.path('logs')}/`)
      .replace(/^\s*create .*$/m, '    create 0600')
      .replace(/systemctl kill --signal=SIGUSR1 pushtask\.service/, `kill -USR1 ${running.child.pid}`);
    expect(conf).toContain(`kill -USR1 ${running.child.pid}`);
    fs.writeFileSync(f.ws.path('logrotate.conf'), conf, { mode: 0o644 });
    execFileSync(logrotate, ['--force', '--state', f.ws.path('logrotate.state'), f.ws.path('logrotate.conf')]);
    expect(fs.existsSync(`${subtask}.1`)).toBe(true);
    await waitFor(() => messages(subtask).includes('Log files reopened (SIGUSR1)'), 'the subtask writing to a new file');
    f.dropFile('after-logrotate.csv', 100);
    await waitFor(() => messages(subtask).some((msg) => /^Uploaded .*after-logrotate\.csv/.test(msg)), 'the upload logged in the new file', 20_000);
    expect(running.child.exitCode).toBeNull();
  });
});
