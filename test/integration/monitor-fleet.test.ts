/**
 * The monitor over a fleet of fake clients in a local folder: a thousand clients read in one
 * cycle (then only what changed), `--check` exit codes for each threshold, and `--serve`'s
 * `/api/clients` and `/metrics` (parsed by a Prometheus text-format parser).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { command as monitorCommand } from '../../src/cli/monitor.js';
import type { CliIO } from '../../src/cli/command.js';
import { resolveConfig } from '../../src/config/resolve.js';
import { DEFAULT_THRESHOLDS } from '../../src/monitor/fleet.js';
import { FleetMonitor, type FleetSnapshot } from '../../src/monitor/fleetMonitor.js';
import { FleetReader } from '../../src/monitor/reader.js';
import { serveMonitor } from '../../src/monitor/server.js';
import { runCli, startCli } from '../helpers/cli.js';
import { freePort } from '../helpers/daemon.js';
import { writeFakeClient, writeFakeFleet } from '../helpers/fakeFleet.js';
import { scrape } from '../helpers/prometheus.js';
import { createWorkspace, type Workspace } from '../helpers/workspace.js';

let ws: Workspace;
const closers: (() => Promise<unknown>)[] = [];

beforeEach(() => {
  ws = createWorkspace('pushtask-fleet-');
  ws.write('monitor.config.ts', "export default { transport: { type: 'local', dir: 'remote' } };\n");
  fs.mkdirSync(ws.path('remote'));
});

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  ws.cleanup();
});

async function reader(): Promise<FleetReader> {
  const config = resolveConfig({ watch: [{ file: 'unused' }], transport: { type: 'local', dir: 'remote' } }, { cwd: ws.dir });
  const fleet = await FleetReader.open(config);
  closers.push(() => fleet.close());
  return fleet;
}

/** Runs `pushtask monitor` in this process (the exit code is what main() would exit with). */
async function monitor(...args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const io: CliIO = { stdin: process.stdin, stdout: process.stdout, out: (text) => void (out += text), err: (text) => void (out += text), cwd: ws.dir };
  const code = await monitorCommand.run(['--config', 'monitor.config.ts', ...args], io);
  return { code, out };
}

describe('a fleet of 1,000 clients in a local folder', () => {
  it('reads every heartbeat and status file in one cycle, then only what changed', async () => {
    const now = Date.now();
    writeFakeFleet(ws.path('remote'), 1000, now);
    ws.write('remote/data.csv', 'not a client\n');
    const fleet = new FleetMonitor(await reader(), DEFAULT_THRESHOLDS, 10);
    const first = await fleet.cycle(new AbortController().signal);
    expect(first.error).toBeNull();
    console.log(`monitor cycle over 1,000 fake clients (local folder): ${first.cycleMs} ms cold, ${first.reads} files read`);
    expect(first.reads).toBe(1900); // 1,000 heartbeats + 900 status files
    expect(first.summary).toMatchObject({ clients: 1000, online: 960, offline: 40, unknown: 0 });
    expect(first.clients.filter((c) => c.status === null)).toHaveLength(100);
    const behind = first.clients.filter((c) => c.backlogFiles === 12);
    expect(behind).toHaveLength(25);
    expect(behind.every((c) => c.level === 'critical' && c.oldestPendingSec! >= 7200)).toBe(true);
    // Worst first: the critical ones lead, offline before merely behind.
    expect(first.clients.slice(0, 40).every((c) => c.state === 'offline')).toBe(true);
    expect(first.clients.at(-1)!.level).toBe('ok');

    const second = await fleet.cycle(new AbortController().signal);
    expect(second.reads).toBe(0);
    for (let i = 0; i < 10; i += 1) writeFakeClient(ws.path('remote'), { name: `logger-${String(i).padStart(4, '0')}`, ageSec: 0, status: { queue: { files: 1, bytes: 5, oldestQueuedAt: new Date().toISOString() } } });
    const third = await fleet.cycle(new AbortController().signal);
    expect(third.reads).toBe(20);
    expect(third.clients.find((c) => c.client === 'logger-0003')!.backlogFiles).toBe(1);
    console.log(`... warm cycles: ${second.cycleMs} ms (nothing changed), ${third.cycleMs} ms (10 clients changed)`);
  });
});

describe('pushtask monitor --check', () => {
  const now = () => Date.now();
  const iso = (ageSec: number) => new Date(now() - ageSec * 1000).toISOString();

  it('exits 0 when all is well, and 1 or 2 by each threshold', async () => {
    writeFakeClient(ws.path('remote'), { name: 'fine', ageSec: 5 });
    writeFakeClient(ws.path('remote'), { name: 'old-agent', ageSec: 5, status: null });
    let run = await monitor('--check');
    expect(run).toEqual({ code: 0, out: expect.stringMatching(/^PUSHTASK OK - 2 client\(s\): 2 online, 0 offline, 0 unknown \| clients=2 /) });

    // Backlog age: 700 s is past the default warning (600 s), below the critical (3600 s).
    writeFakeClient(ws.path('remote'), { name: 'behind', ageSec: 5, status: { queue: { files: 3, bytes: 300, oldestQueuedAt: iso(700) } } });
    run = await monitor('--check');
    expect(run.code).toBe(1);
    expect(run.out).toMatch(/^PUSHTASK WARNING - .*; warning: behind \(backlog older than 10 min\) \|/);
    expect((await monitor('--check', '--backlog-warn', '800')).code).toBe(0);
    expect((await monitor('--check', '--backlog-warn', '60', '--backlog-crit', '650')).code).toBe(2);
    fs.rmSync(ws.path('remote/behind.heartbeat'));

    // Failures: failing for 100 s is a warning at once by default, critical past --failing-crit.
    writeFakeClient(ws.path('remote'), {
      name: 'failing',
      ageSec: 5,
      status: { failingSince: iso(100), lastError: { at: iso(1), code: 'AUTH_FAILED', message: 'Authentication failed for u@h' } },
    });
    run = await monitor('--check');
    expect(run.code).toBe(1);
    expect(run.out).toContain('; warning: failing (failing (AUTH_FAILED)) |');
    expect((await monitor('--check', '--failing-crit', '60')).code).toBe(2);
    expect((await monitor('--check', '--failing-warn', '200')).code).toBe(0);
    fs.rmSync(ws.path('remote/failing.heartbeat'));

    // Offline: critical by default; --offline says otherwise.
    writeFakeClient(ws.path('remote'), { name: 'gone', ageSec: 600, status: null });
    run = await monitor('--check');
    expect(run.code).toBe(2);
    expect(run.out).toMatch(/^PUSHTASK CRITICAL - 3 client\(s\): 2 online, 1 offline, 0 unknown; critical: gone \(offline\) \|/);
    expect((await monitor('--check', '--offline', 'warning')).code).toBe(1);
    expect((await monitor('--check', '--offline', 'ok')).code).toBe(0);
  });

  it('as a process: exits 2 on a critical client and 3 when the folder cannot be read', async () => {
    writeFakeClient(ws.path('remote'), { name: 'gone', ageSec: 600 });
    const critical = await runCli(['monitor', '--config', 'monitor.config.ts', '--check'], { cwd: ws.dir });
    expect(critical.code).toBe(2);
    expect(critical.stdout).toMatch(/^PUSHTASK CRITICAL - 1 client\(s\)/);
    fs.rmSync(ws.path('remote'), { recursive: true });
    ws.write('remote', 'a file where the folder should be');
    const unreadable = await runCli(['monitor', '--config', 'monitor.config.ts', '--check'], { cwd: ws.dir });
    expect(unreadable.code).toBe(3);
    expect(unreadable.stdout).toMatch(/^PUSHTASK UNKNOWN - cannot read local folder .*remote: Cannot /);
  });
});

describe('pushtask monitor --serve', () => {
  it('serves /api/clients and /metrics that match the fleet, and the page files', async () => {
    const now = Date.now();
    writeFakeFleet(ws.path('remote'), 50, now);
    const fleet = new FleetMonitor(await reader(), DEFAULT_THRESHOLDS, 10);
    await fleet.cycle(new AbortController().signal);
    const server = await serveMonitor(fleet, { port: await freePort() });
    closers.push(() => server.close());

    const api = (await (await fetch(`${server.url}api/clients`)).json()) as FleetSnapshot;
    expect(api.summary).toMatchObject({ clients: 50, offline: 2 });
    expect(api.clients[0]!.state).toBe('offline');

    const metrics = await scrape(`${server.url}metrics`);
    const online = metrics.byLabel('pushtask_client_online', 'client');
    expect(online.size).toBe(50);
    expect([...online.entries()].filter(([, value]) => value === 0).map(([client]) => client).sort()).toEqual(['logger-0024', 'logger-0049']);
    const backlog = metrics.byLabel('pushtask_client_backlog_bytes', 'client');
    expect(backlog.size).toBe(45); // the 5 without a status file have no backlog series
    expect(backlog.get('logger-0039')).toBe(12 * 4096);
    expect(metrics.value('pushtask_client_oldest_pending_seconds', { client: 'logger-0039' })).toBeGreaterThanOrEqual(7200);
    const heartbeatAt = fs.statSync(ws.path('remote/logger-0003.heartbeat')).mtimeMs / 1000;
    expect(metrics.value('pushtask_client_last_heartbeat_timestamp_seconds', { client: 'logger-0003' })).toBeCloseTo(heartbeatAt, 0);
    expect(metrics.value('pushtask_client_last_upload_timestamp_seconds', { client: 'logger-0003' })).toBeGreaterThan(0);
    expect(metrics.value('pushtask_fleet_clients', { state: 'offline' })).toBe(2);
    expect(metrics.families.get('pushtask_client_online')!.type).toBe('GAUGE');

    const page = await fetch(server.url);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await page.text();
    expect(html).toContain('<script src="app.js"></script>');
    expect(html).not.toMatch(/https?:\/\//); // nothing from elsewhere
    for (const asset of ['app.js', 'style.css']) {
      const response = await fetch(`${server.url}${asset}`);
      expect(response.status).toBe(200);
      expect(await response.text()).not.toMatch(/(src|href)=["']?https?:/);
    }
    expect((await fetch(`${server.url}nope`)).status).toBe(404);
    expect((await fetch(`${server.url}api/clients`, { method: 'POST' })).status).toBe(405);
    const history = (await (await fetch(`${server.url}api/history?client=logger-0039`)).json()) as { points: unknown[] };
    expect(history.points).toHaveLength(1);
  });

  it('as a process: prints the address, serves the page from src/ through tsx, and stops on SIGTERM', async () => {
    writeFakeFleet(ws.path('remote'), 3);
    const serving = startCli(['monitor', '--config', 'monitor.config.ts', '--serve', '--port', '0', '--interval', '1'], { cwd: ws.dir });
    closers.push(async () => {
      serving.child.kill('SIGKILL');
      await serving.done;
    });
    await serving.waitForOutput(/Fleet page: http:\/\/127\.0\.0\.1:\d+\//, 30_000);
    const url = /Fleet page: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(serving.stdout())![1]!;
    let snapshot: FleetSnapshot | null = null;
    for (let i = 0; i < 100 && !snapshot?.checkedAt; i += 1) {
      snapshot = (await (await fetch(`${url}api/clients`)).json()) as FleetSnapshot;
      if (!snapshot.checkedAt) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(snapshot!.summary.clients).toBe(3);
    expect(await (await fetch(`${url}app.js`)).text()).toContain("fetch('api/clients'");
    serving.child.kill('SIGTERM');
    const run = await serving.done;
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
  }, 60_000);
});
