/**
 * SIGHUP reloads the config of a running `pushtask watch` (a real process): a changed remote
 * folder is picked up with the queued files kept, and an invalid file is reported by field while
 * the agent goes on as it was.
 */
import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateHostKey, startEmbeddedSftpServer, type EmbeddedSftpServer } from '../../src/embedded/sftpServer.js';
import type { AgentStatus } from '../../src/subtask/status.js';
import { startCli, type RunningCli } from '../helpers/cli.js';
import { createWorkspace, sameBytes, waitFor, type Workspace } from '../helpers/workspace.js';

const PASSWORD = 'reload-test-password';
const HOST_KEY = generateHostKey();

let ws: Workspace;
let server: EmbeddedSftpServer | null = null;
let running: RunningCli | null = null;

beforeEach(() => {
  ws = createWorkspace('pushtask-reload-');
  fs.mkdirSync(ws.path('drop'));
});

afterEach(async () => {
  running?.child.kill('SIGKILL');
  await running?.done;
  running = null;
  await server?.close();
  server = null;
  ws.cleanup();
});

async function startServer(port = 0): Promise<EmbeddedSftpServer> {
  server = await startEmbeddedSftpServer({ root: ws.path('server'), username: 'logger', password: PASSWORD, hostKey: HOST_KEY, port });
  return server;
}

function writeConfig(port: number, fingerprint: string, remoteDir: string, extra = ''): void {
  ws.write(
    'pushtask.config.ts',
    `export default {
  watch: [{ dir: 'drop', stableMs: 100 }],
  transport: { type: 'sftp', host: '127.0.0.1', port: ${port}, username: 'logger', password: process.env.TEST_SFTP_PASSWORD,
               hostKey: '${fingerprint}', remoteDir: '${remoteDir}' },
  intervalMs: 200,
  retry: { quickTries: 100, quickDelayMs: 200 },
  log: { console: false },
  ${extra}
};
`,
  );
}

function dropFile(name: string, content: string): string {
  const temp = ws.write(`drop/${name}.part`, content);
  fs.renameSync(temp, ws.path('drop', name));
  return ws.path('drop', name);
}

function agentStatus(): AgentStatus | null {
  const file = ws.path('drop/upload/sftp/status.json');
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as AgentStatus) : null;
}

/** Files the agent holds for upload: waiting, or in a lane that is trying to connect. */
function held(): string[] {
  const status = agentStatus();
  return status ? [...status.queue.items, ...status.inFlight].map((item) => item.file) : [];
}

/** Waits for a condition; on a timeout the error carries status.json and the subtask log's tail. */
async function waitWithDiagnostics(condition: () => boolean, what: string, timeoutMs: number): Promise<void> {
  try {
    await waitFor(condition, what, timeoutMs);
  } catch (error) {
    const log = ws.path('logs/pushtask-subtask.log');
    const tail = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').slice(-25).join('\n') : '(no subtask log)';
    throw new Error(`${(error as Error).message}\nstatus.json: ${JSON.stringify(agentStatus())}\nsubtask log:\n${tail}`, { cause: error });
  }
}

/** Sends SIGHUP and waits for the watch to report the outcome. */
async function reload(expected: string | RegExp): Promise<void> {
  running!.child.kill('SIGHUP');
  await running!.waitForOutput(expected, 30_000);
}

describe('SIGHUP', { timeout: 60_000 }, () => {
  it('picks up a changed remote folder, keeping the files queued while the server was down', async () => {
    const { port, hostKeyFingerprint } = await startServer();
    writeConfig(port, hostKeyFingerprint, 'one');
    running = startCli(['watch', '--config', 'pushtask.config.ts'], { cwd: ws.dir, env: { ...process.env, TEST_SFTP_PASSWORD: PASSWORD } });
    await running.waitForOutput('Ctrl-C stops');
    const a = dropFile('a.txt', 'first\n');
    await waitFor(() => sameBytes(a, ws.path('server/one/a.txt')), 'a.txt in one/', 20_000);

    await server!.close(); // the server goes away: the next file waits in the spool
    server = null;
    const b = dropFile('b.txt', 'queued while down\n');
    await waitWithDiagnostics(() => held().some((file) => file.endsWith('b.txt')), 'b.txt held while the server is down', 20_000);

    writeConfig(port, hostKeyFingerprint, 'two');
    await reload(/reloaded: .*sftp logger@127\.0\.0\.1:\d+ two/);
    expect(running.stdout()).toMatch(/SIGHUP: the new config is valid; restarting the agent/);
    await startServer(port);
    await waitFor(() => sameBytes(b, ws.path('server/two/b.txt')), 'the queued b.txt in two/', 30_000);
    const c = dropFile('c.txt', 'after the reload\n');
    await waitFor(() => sameBytes(c, ws.path('server/two/c.txt')), 'c.txt in two/', 20_000);
    expect(fs.readdirSync(ws.path('server/one'))).toEqual(['a.txt']);

    running.child.kill('SIGTERM');
    const run = await running.done;
    expect(run.code).toBe(0);
    expect(run.stdout + run.stderr).not.toContain(PASSWORD);
    // The reload is in the log file too, for whoever reads it later.
    expect(fs.readFileSync(ws.path('logs/pushtask-master.log'), 'utf8')).toMatch(/pushtask watch: reloaded/);
  });

  it('reports an invalid config by field and keeps running on the old one; never exits on SIGHUP; names a spool move', async () => {
    const { port, hostKeyFingerprint } = await startServer();
    writeConfig(port, hostKeyFingerprint, 'in');
    running = startCli(['watch', '--config', 'pushtask.config.ts'], { cwd: ws.dir, env: { ...process.env, TEST_SFTP_PASSWORD: PASSWORD } });
    await running.waitForOutput('Ctrl-C stops');

    writeConfig(port, hostKeyFingerprint, 'elsewhere', "deadTimeMs: 'soon',");
    await reload(/Kept running with the previous config/);
    expect(running.stdout()).toMatch(/SIGHUP: Invalid pushtask configuration in .*pushtask\.config\.ts:\n {2}- deadTimeMs: .*given "soon"/);
    fs.writeFileSync(ws.path('pushtask.config.ts'), 'export default {{{ not even TypeScript');
    await reload(/SIGHUP: Syntax error in .*pushtask\.config\.ts:1:\d+: [^]*Kept running with the previous config/);

    const file = dropFile('still.txt', 'delivered by the old config\n');
    await waitFor(() => sameBytes(file, ws.path('server/in/still.txt')), 'delivery after the failed reloads', 20_000);
    expect(fs.existsSync(ws.path('server/elsewhere'))).toBe(false);
    expect(fs.readFileSync(ws.path('logs/pushtask-master.log'), 'utf8')).toMatch(/"level":50.*deadTimeMs/);

    // A valid config with another spool: said out loud, with what the old one still holds.
    writeConfig(port, hostKeyFingerprint, 'in', "spoolDir: 'spool2',");
    await reload(/reloaded: .*spool .*spool2/);
    expect(running.stdout()).toMatch(/SIGHUP: the spool moves from .*drop\/upload\/sftp to .*spool2\. Left queued in the old spool: nothing\./);
    const later = dropFile('later.txt', 'after the spool moved\n');
    await waitFor(() => sameBytes(later, ws.path('server/in/later.txt')), 'delivery from the new spool', 20_000);

    running.child.kill('SIGTERM');
    expect((await running.done).code).toBe(0);
  });
});
