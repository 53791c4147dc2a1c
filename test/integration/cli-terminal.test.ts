/**
 * `pushtask watch` output with and without a terminal. In a pseudo-terminal (util-linux `script`)
 * it shows a live progress line for an upload that takes a while (a slow link to the embedded
 * SFTP server) and stops on Ctrl-C; through pipes it prints plain lines with no control
 * character at all.
 */
import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startEmbeddedSftpServer, type EmbeddedSftpServer } from '../../src/embedded/sftpServer.js';
import { scriptCommand, startCli, startCliUnderTerminal, type RunningCli } from '../helpers/cli.js';
import { startSlowLink, type SlowLink } from '../helpers/slowLink.js';
import { createWorkspace, sameBytes, waitFor, type Workspace } from '../helpers/workspace.js';

const MiB = 1024 * 1024;
const PASSWORD = 'terminal-test-password';
/** Bytes per second over the slow link: a 3 MiB file takes about three seconds. (fastPut keeps up to
 * 8 MiB in flight, so the first acknowledgements, hence progress events, come late in the upload.) */
const RATE = MiB;

let ws: Workspace;
let server: EmbeddedSftpServer;
let link: SlowLink;
let running: RunningCli | null = null;

beforeEach(async () => {
  ws = createWorkspace('pushtask-terminal-');
  server = await startEmbeddedSftpServer({ root: ws.path('server'), username: 'logger', password: PASSWORD });
  link = await startSlowLink(server.port, RATE);
  fs.mkdirSync(ws.path('drop'));
  ws.write(
    'pushtask.config.ts',
    `export default {
  watch: [{ dir: 'drop', stableMs: 100 }],
  transport: { type: 'sftp', host: '127.0.0.1', port: ${link.port}, username: 'logger',
               password: process.env.TEST_SFTP_PASSWORD, hostKey: '${server.hostKeyFingerprint}', remoteDir: 'in' },
  intervalMs: 200,
};
`,
  );
});

afterEach(async () => {
  running?.child.kill('SIGKILL');
  await running?.done;
  running = null;
  await link.close();
  await server.close();
  ws.cleanup();
});

/** Drops a file the way a well-behaved producer does: a temp name (ignored), then a rename. */
function drop(name: string, bytes: number): string {
  const temp = ws.write(`drop/${name}.part`, Buffer.alloc(bytes, 0x5a));
  fs.renameSync(temp, ws.path('drop', name));
  return ws.path('drop', name);
}

/** C0 control characters except newline and tab, and DEL. */
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/;

const hasScript = scriptCommand() !== null;
if (!hasScript) console.warn('cli-terminal.test.ts: `script` (util-linux) not found; skipping the terminal test (.ci/run installs it)');

describe('pushtask watch output', { timeout: 60_000 }, () => {
  it.skipIf(!hasScript)('in a terminal: a live line per upload with bytes and rate, redrawn in place; Ctrl-C stops it', async () => {
    // The password reaches the config through the environment, which script passes on.
    running = startCliUnderTerminal(['watch', '--config', 'pushtask.config.ts'], { cwd: ws.dir, env: { ...process.env, TEST_SFTP_PASSWORD: PASSWORD }, columns: 150 });
    await running.waitForOutput('Ctrl-C stops');
    const file = drop('big.bin', 3 * MiB);
    // "↑ drop/big.bin → big.bin  1.2 MiB of 3.0 MiB  40 %  1.0 MiB/s"
    await running.waitForOutput(/↑ drop\/big\.bin → big\.bin +[\d.]+ (B|KiB|MiB) of 3\.0 MiB +\d+ % +[\d.]+ (B|KiB|MiB)\/s/);
    await running.waitForOutput(/uploaded +drop\/big\.bin → big\.bin \(3\.0 MiB/);
    expect(sameBytes(file, ws.path('server/in/big.bin'))).toBe(true);

    running.child.stdin!.write('\x03'); // Ctrl-C: the terminal sends SIGINT to the foreground group
    const run = await running.done;
    expect(run.code).toBe(0);
    const screen = run.stdout;
    expect(screen).toMatch(/SIGINT: stopping gracefully/);
    expect(screen).toMatch(/stopped\r?\n/);
    // Redrawn in place: carriage return + erase line, and cursor-up for the lines below the transfer.
    expect(screen).toContain('\r\x1b[K');
    expect(screen).toContain('\x1b[1A\x1b[K');
    expect(screen).toMatch(/queue: (empty|\d+ file\(s\))/);
    // In a terminal the log lines stay in the log files.
    expect(screen).not.toMatch(/INFO: \[subtask\]/);
    expect(fs.readFileSync(ws.path('logs/pushtask-subtask.log'), 'utf8')).toMatch(/Uploaded .*big\.bin/);
    expect(screen).not.toContain(PASSWORD);
  });

  it('without a terminal: plain log and progress lines, no control characters', async () => {
    running = startCli(['watch', '--config', 'pushtask.config.ts'], { cwd: ws.dir, env: { ...process.env, TEST_SFTP_PASSWORD: PASSWORD, FORCE_COLOR: '1' } });
    await running.waitForOutput('Ctrl-C stops');
    const file = drop('big.bin', 4 * MiB);
    await waitFor(() => /Uploaded .*big\.bin/.test(running!.stderr()), 'the upload to be logged', 30_000);
    expect(sameBytes(file, ws.path('server/in/big.bin'))).toBe(true);
    running.child.kill('SIGTERM');
    const run = await running.done;
    expect(run.code).toBe(0);
    // A progress line for the upload of about four seconds (the first comes after two).
    expect(run.stdout).toMatch(/\d\d:\d\d:\d\d\.\d{3} progress +↑ drop\/big\.bin → big\.bin +[\d.]+ (KiB|MiB) of 4\.0 MiB .*; queue: /);
    expect(run.stderr).toMatch(/INFO: \[master\] Started/);
    expect(run.stdout).not.toMatch(CONTROL);
    expect(run.stderr).not.toMatch(CONTROL);
    expect(run.stdout + run.stderr).not.toContain(PASSWORD);
  });
});
