/**
 * The agent's own Prometheus metrics (TaskMaster's `metrics` option, `pushtask watch
 * --metrics-port`), scraped over HTTP, parsed by a Prometheus text-format parser and compared with
 * what is really in the spool while the server is down, after it is back, and after a crash.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskMaster, type SubtaskStartEvent, type UploadedEvent } from '../../src/index.js';
import { startCli } from '../helpers/cli.js';
import { freePort } from '../helpers/daemon.js';
import { parseMetrics, scrape, type Scrape } from '../helpers/prometheus.js';
import { startRestartableSftp } from '../helpers/restartableSftp.js';
import { createWorkspace, nextEvent, testConfig, waitFor, type Workspace } from '../helpers/workspace.js';

let ws: Workspace | null = null;
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  ws?.cleanup();
  ws = null;
});

/** What the spool really holds: data snapshots (heartbeats and status files left out) and their bytes. */
function spoolContent(spoolDir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const name of fs.readdirSync(spoolDir)) {
    if (!/^[0-9a-f]{20}\.\d+\.json$/.test(name)) continue;
    const meta = JSON.parse(fs.readFileSync(path.join(spoolDir, name), 'utf8')) as { kind: string };
    if (meta.kind === 'heartbeat') continue;
    files += 1;
    bytes += fs.statSync(path.join(spoolDir, name.replace(/\.json$/, '.snap'))).size;
  }
  return { files, bytes };
}

async function waitForScrape(url: string, condition: (metrics: Scrape) => boolean, what: string, timeoutMs = 15_000): Promise<Scrape> {
  let last: Scrape | null = null;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    last = await scrape(url);
    if (condition(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Timed out waiting for ${what}; last scrape: ${JSON.stringify(Object.fromEntries([...(last?.families ?? new Map())].filter(([name]) => name.startsWith('pushtask_')).map(([name, f]) => [name, f.metrics])))}`);
}

describe('agent metrics', () => {
  it('follow the spool while the server is down, after it is back, and count subtask restarts', async () => {
    ws = createWorkspace();
    const server = await startRestartableSftp(ws.path('server'), 'pw');
    cleanups.push(() => server.close());
    fs.mkdirSync(ws.path('drop'));
    ws.write('data/a.csv', 'a,b\n1,2\n');
    const master = new TaskMaster(
      testConfig({
        watch: [{ file: 'data/a.csv' }, { dir: 'drop', stableMs: 0 }],
        transport: server.transport,
        heartbeat: { intervalSec: 1, name: 'metrics-pc' },
      }),
      { cwd: ws.dir, metrics: { port: 0 } },
    );
    cleanups.push(() => master.stop());
    const uploaded: UploadedEvent[] = [];
    master.on('uploaded', (event) => uploaded.push(event));
    const failed: unknown[] = [];
    master.on('upload-failed', (event) => failed.push(event));
    await master.start();
    const url = master.metrics!.url!;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const spoolDir = master.config.spoolDir;

    let metrics = await waitForScrape(url, (m) => m.value('pushtask_uploads_total') === 1, 'the first upload');
    expect(metrics.value('pushtask_uploaded_bytes_total')).toBe(8);
    expect(metrics.value('pushtask_subtask_up')).toBe(1);
    expect(metrics.families.get('pushtask_uploads_total')!.type).toBe('COUNTER');
    expect(metrics.value('process_resident_memory_bytes')).toBeGreaterThan(0);

    // The server goes down; three files wait in the spool.
    await server.down();
    const sizes = [1000, 2000, 3000];
    sizes.forEach((size, i) => ws!.write(`drop/f${i}.bin`, Buffer.alloc(size, i)));
    metrics = await waitForScrape(
      url,
      (m) => m.value('pushtask_queue_files') === 3 && m.value('pushtask_queue_bytes') === 6000 && (m.value('pushtask_upload_failures_total') ?? 0) > 0 && m.value('pushtask_failing') === 1,
      'three queued files and a failure',
    );
    expect(spoolContent(spoolDir)).toEqual({ files: 3, bytes: 6000 });
    expect(metrics.value('pushtask_connection_state', { state: 'connected' })).toBe(0);
    const failures = metrics.byLabel('pushtask_upload_failures_total', 'code');
    expect([...failures.keys()].every((code) => /^[A-Z_]+$/.test(code))).toBe(true);
    expect(failures.get('CONNECT_FAILED')).toBeGreaterThan(0);
    // The oldest pending file waited since the drop, and that age grows between scrapes.
    const age = metrics.value('pushtask_oldest_pending_seconds')!;
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await scrape(url)).value('pushtask_oldest_pending_seconds')).toBeGreaterThan(age);

    await server.up();
    metrics = await waitForScrape(url, (m) => m.value('pushtask_queue_files') === 0 && m.value('pushtask_uploads_total') === 4, 'the queue delivered');
    const data = uploaded.filter((event) => !event.remotePath.endsWith('.heartbeat') && !event.remotePath.startsWith('.pushtask/'));
    expect(data).toHaveLength(4);
    expect(metrics.value('pushtask_uploaded_bytes_total')).toBe(data.reduce((sum, event) => sum + event.bytes, 0));
    expect(metrics.value('pushtask_failing')).toBe(0);
    // Failures stopped with the outage: each one was counted once.
    const total = [...metrics.byLabel('pushtask_upload_failures_total', 'code').values()].reduce((a, b) => a + b, 0);
    expect(total).toBe(failed.length);
    expect(metrics.value('pushtask_connection_state', { state: 'connected' })).toBe(1);
    expect(metrics.value('pushtask_oldest_pending_seconds')).toBe(0);
    expect(metrics.value('pushtask_last_upload_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 30);
    expect(spoolContent(spoolDir)).toEqual({ files: 0, bytes: 0 });

    // A crash: the supervisor restarts the subtask; counters keep growing, restarts are counted.
    const notifiesBefore = (await scrape(url)).value('pushtask_notifies_total')!;
    ws.append('data/a.csv', '3,4\n');
    master.notify('data/a.csv');
    await waitForScrape(url, (m) => m.value('pushtask_notifies_total') === notifiesBefore + 1 && m.value('pushtask_uploads_total') === 5, 'the notify counted');
    // Notified only once the new subtask is ready (watching): a touch before that is taken by its
    // start-up scan, which delivers it without counting a notify.
    const restarted = nextEvent<SubtaskStartEvent>(master, 'subtask-start', (event) => event.restart, 20_000);
    process.kill(master.subtaskPid!, 'SIGKILL');
    await restarted;
    await waitForScrape(url, (m) => m.value('pushtask_subtask_restarts_total') === 1 && m.value('pushtask_subtask_up') === 1, 'the restart', 20_000);
    ws.append('data/a.csv', '5,6\n');
    master.notify('data/a.csv');
    metrics = await waitForScrape(url, (m) => m.value('pushtask_uploads_total')! >= 6 && m.value('pushtask_notifies_total')! >= notifiesBefore + 2, 'an upload after the restart', 20_000);
    // Carried over the restart (the new subtask may count the touch before the crash once more,
    // when the crash came before its delivery was saved: at-least-once).
    expect(metrics.value('pushtask_notifies_total')).toBeGreaterThanOrEqual(notifiesBefore + 2);

    await master.stop();
    await expect(fetch(url)).rejects.toThrow(); // nothing served after stop
  }, 90_000);

  it("fills an app's own registry and serves nothing when no port is given", async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'x\n');
    const registry = new Registry();
    const master = new TaskMaster(testConfig({ watch: [{ file: 'data/a.csv' }] }), { cwd: ws.dir, metrics: { registry } });
    cleanups.push(() => master.stop());
    await master.start();
    expect(master.metrics!.url).toBeNull();
    await waitFor(() => fs.existsSync(ws!.path('remote/a.csv')), 'the upload');
    let parsed: Scrape | null = null;
    for (let i = 0; i < 100 && parsed?.value('pushtask_uploads_total') !== 1; i += 1) {
      parsed = parseMetrics(await registry.metrics());
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(parsed!.value('pushtask_uploads_total')).toBe(1);
    expect(parsed!.families.has('process_resident_memory_bytes')).toBe(false); // the app's registry: no process metrics added
  });

  it('pushtask watch --metrics-port serves them on 127.0.0.1', async () => {
    ws = createWorkspace();
    fs.mkdirSync(ws.path('drop'));
    ws.write('pushtask.config.ts', "export default { watch: [{ dir: 'drop', stableMs: 0 }], transport: { type: 'local', dir: 'remote' }, intervalMs: 200, log: { console: false } };\n");
    const port = await freePort();
    const watch = startCli(['watch', '--config', 'pushtask.config.ts', '--plain', '--metrics-port', String(port)], { cwd: ws.dir });
    cleanups.push(async () => {
      watch.child.kill('SIGKILL');
      await watch.done;
    });
    await watch.waitForOutput(`metrics on http://127.0.0.1:${port}/metrics`, 30_000);
    ws.write('drop/x.txt', 'hello');
    const metrics = await waitForScrape(`http://127.0.0.1:${port}/metrics`, (m) => m.value('pushtask_uploads_total') === 1, 'the upload');
    expect(metrics.value('pushtask_uploaded_bytes_total')).toBe(5);
    expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
    watch.child.kill('SIGTERM');
    expect((await watch.done).code).toBe(0);
  }, 60_000);
});
