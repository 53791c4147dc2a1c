/**
 * `pushtask monitor` as a real process: heartbeats in a local folder (online, overdue, unreadable),
 * and end to end over SFTP: a `pushtask watch` client with a 1 s heartbeat is online while it
 * runs and is marked offline once its heartbeat is overdue after it stopped.
 */
import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ClientReport } from '../../src/monitor/heartbeats.js';
import { startEmbeddedSftpServer, type EmbeddedSftpServer } from '../../src/embedded/sftpServer.js';
import { runCli, startCli, type RunningCli } from '../helpers/cli.js';
import { freePort } from '../helpers/daemon.js';
import { createWorkspace, waitFor, type Workspace } from '../helpers/workspace.js';

const PASSWORD = 'monitor-test-password';
const env = { ...process.env, TEST_SFTP_PASSWORD: PASSWORD };

interface MonitorJson {
  checkedAt: string;
  target: string;
  clients: ClientReport[];
}

let ws: Workspace;
let server: EmbeddedSftpServer | null = null;
const processes: RunningCli[] = [];

beforeEach(() => {
  ws = createWorkspace('pushtask-monitor-');
});

afterEach(async () => {
  for (const running of processes.splice(0)) {
    running.child.kill('SIGKILL');
    await running.done;
  }
  await server?.close();
  server = null;
  ws.cleanup();
});

function heartbeat(name: string, content: string, ageSec: number): void {
  const file = ws.write(`remote/${name}.heartbeat`, content);
  const mtime = new Date(Date.now() - ageSec * 1000);
  fs.utimesSync(file, mtime, mtime);
}

describe('pushtask monitor', { timeout: 60_000 }, () => {
  it('applies the online rule to each heartbeat in a local folder; unreadable ones are "unknown"', async () => {
    heartbeat('fresh-pc', '3600\n', 5); // due within an hour, written 5 s ago
    heartbeat('late-pc', '70\n', 75); // 5 s overdue
    heartbeat('garbled', 'sixty\n', 1);
    heartbeat('empty', '', 1);
    ws.write('remote/data.csv', 'not a heartbeat');
    fs.mkdirSync(ws.path('remote/sub.heartbeat')); // a folder is not a heartbeat either
    // A monitor-only config: no watch list needed.
    ws.write('monitor.config.ts', "export default { transport: { type: 'local', dir: 'remote' } };\n");

    const json = await runCli(['monitor', '--config', 'monitor.config.ts', '--json'], { cwd: ws.dir });
    expect(json.stderr).toBe('');
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as MonitorJson;
    expect(report.target).toBe(`local folder ${ws.path('remote')}`);
    const byClient = Object.fromEntries(report.clients.map((client) => [client.client, client]));
    expect(Object.keys(byClient).sort()).toEqual(['empty', 'fresh-pc', 'garbled', 'late-pc']);
    expect(byClient['fresh-pc']).toMatchObject({ state: 'online', graceSec: 3600, file: 'fresh-pc.heartbeat' });
    expect(byClient['fresh-pc']!.lastSeenAgoSec).toBeGreaterThanOrEqual(4);
    expect(byClient['late-pc']).toMatchObject({ state: 'offline', graceSec: 70 });
    expect(Date.parse(byClient['late-pc']!.offlineAt!)).toBeLessThan(Date.now());
    expect(byClient.garbled).toMatchObject({ state: 'unknown', graceSec: null, problem: expect.stringContaining('"sixty') });
    expect(byClient.empty).toMatchObject({ state: 'unknown' });

    const human = await runCli(['monitor', '--config', 'monitor.config.ts'], { cwd: ws.dir });
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^Heartbeats in local folder .*remote: 1 online, 1 offline, 2 unknown; 1 critical, 2 warning\nCLIENT +STATE +LEVEL +LAST SEEN +BACKLOG +OLDEST +LAST UPLOAD +DETAIL\nlate-pc /);
    // A time carries its date when it is not today: "next heartbeat due" an hour ahead does from 23:00 on.
    const time = String.raw`(\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d`;
    expect(human.stdout).toMatch(new RegExp(String.raw`\nlate-pc +OFFLINE +CRITICAL +${time} \(\d+ min \d+ s ago\) +- +overdue since ${time} \((\d+ min )?\d+ s ago\)\n`));
    expect(human.stdout).toMatch(new RegExp(String.raw`\nfresh-pc +online +ok +${time} \((\d+ min )?\d+ s ago\) +- +next heartbeat due by ${time} \(in \d+ min \d+ s\)\n`));
    expect(human.stdout).toMatch(/\ngarbled +unknown +WARNING .*its content "sixty\\n" is not a number of seconds\n/);
  });

  it('over SFTP: a watch client with a 1 s heartbeat is online, and offline once its heartbeat is overdue', async () => {
    server = await startEmbeddedSftpServer({ root: ws.path('server'), username: 'logger', password: PASSWORD });
    const transport = `transport: { type: 'sftp', host: '127.0.0.1', port: ${server.port}, username: 'logger',
      password: process.env.TEST_SFTP_PASSWORD, hostKey: '${server.hostKeyFingerprint}', remoteDir: 'beats' }`;
    fs.mkdirSync(ws.path('client/drop'), { recursive: true });
    ws.write(
      'client/pushtask.config.ts',
      `export default { watch: [{ dir: 'drop' }], ${transport}, heartbeat: { intervalSec: 1, name: 'field-pc' }, intervalMs: 200, log: { console: false } };\n`,
    );
    ws.write('monitor.config.ts', `export default { ${transport} };\n`);

    const client = startCli(['watch', '--config', 'pushtask.config.ts'], { cwd: ws.path('client'), env });
    processes.push(client);
    await client.waitForOutput('Ctrl-C stops');
    await waitFor(() => fs.existsSync(ws.path('server/beats/field-pc.heartbeat')), 'the first heartbeat to arrive', 20_000);

    const monitor = startCli(['monitor', '--config', 'monitor.config.ts', '--watch', '--interval', '1', '--json'], { cwd: ws.dir, env });
    processes.push(monitor);
    const states = () =>
      monitor
        .stdout()
        .split('\n')
        .filter(Boolean)
        .map((line) => (JSON.parse(line) as MonitorJson).clients.find((c) => c.client === 'field-pc'));
    await waitFor(() => states().some((c) => c?.state === 'online'), 'field-pc online', 20_000);
    expect(states().find((c) => c?.state === 'online')).toMatchObject({ graceSec: 11, file: 'field-pc.heartbeat' });

    client.child.kill('SIGTERM'); // no more heartbeats from now on
    expect((await client.done).code).toBe(0);
    // The last heartbeat held 11 s (1 + 10): offline 11 s after it was written, seen within a check (1 s).
    await waitFor(() => states().at(-1)?.state === 'offline', 'field-pc offline', 25_000);
    const offline = states().at(-1)!;
    expect(Date.parse(offline.offlineAt!) - Date.parse(offline.lastSeen!)).toBe(11_000);
    expect(offline.lastSeenAgoSec).toBeGreaterThanOrEqual(11);
    // Every check applied the rule: online before the due time, offline after it (1 s either side
    // of it is left out: a check's own time is a little earlier than the checkedAt it reports).
    const reports = monitor
      .stdout()
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as MonitorJson);
    for (const report of reports) {
      const client = report.clients.find((c) => c.client === 'field-pc')!;
      const margin = Date.parse(report.checkedAt) - Date.parse(client.offlineAt!);
      if (Math.abs(margin) > 1000) expect(client.state, report.checkedAt).toBe(margin > 0 ? 'offline' : 'online');
    }

    monitor.child.kill('SIGINT');
    const run = await monitor.done;
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout).not.toContain(PASSWORD);
  });

  it('exits 1 naming the server when it cannot reach it, without printing the password; --watch keeps trying', async () => {
    const port = await freePort();
    ws.write(
      'monitor.config.ts',
      `export default { transport: { type: 'sftp', host: '127.0.0.1', port: ${port}, username: 'u', password: process.env.TEST_SFTP_PASSWORD, hostKey: 'SHA256:AAAA' } };\n`,
    );
    const once = await runCli(['monitor', '--config', 'monitor.config.ts'], { cwd: ws.dir, env });
    expect(once.code).toBe(1);
    expect(once.stderr).toMatch(new RegExp(`^pushtask: Cannot connect to SFTP server 127\\.0\\.0\\.1:${port}`));

    const watching = startCli(['monitor', '--config', 'monitor.config.ts', '--watch', '--interval', '1'], { cwd: ws.dir, env });
    processes.push(watching);
    await waitFor(() => (watching.stderr().match(/trying again in 1 s/g) ?? []).length >= 2, 'two failed checks', 20_000);
    watching.child.kill('SIGTERM');
    const run = await watching.done;
    expect(run.code).toBe(0);
    expect(once.stderr + run.stderr + run.stdout).not.toContain(PASSWORD);
  });
});
