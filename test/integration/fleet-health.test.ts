/**
 * The health status file follows the agent's real state: a backlog and the error while the server
 * is down or refuses a file, both cleared (and a fresh file uploaded) once it recovers.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskMaster } from '../../src/index.js';
import { HEALTH_MAX_BYTES, parseHealth, type HealthDocument } from '../../src/health/document.js';
import { startRestartableSftp } from '../helpers/restartableSftp.js';
import { createWorkspace, testConfig, waitFor, type Workspace } from '../helpers/workspace.js';

const PASSWORD = 'fleet-health-secret-4711';

let ws: Workspace | null = null;
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  ws?.cleanup();
  ws = null;
});

function readHealth(file: string): HealthDocument | null {
  if (!fs.existsSync(file)) return null;
  const text = fs.readFileSync(file, 'utf8');
  expect(Buffer.byteLength(text)).toBeLessThan(HEALTH_MAX_BYTES);
  const parsed = parseHealth(text);
  if (!('document' in parsed)) throw new Error(parsed.problem);
  return parsed.document;
}

describe('health status file', () => {
  it('shows the backlog and the error while uploads fail, and clears both after recovery', { timeout: 120_000 }, async () => {
    ws = createWorkspace();
    const root = ws.path('server');
    const server = await startRestartableSftp(root, PASSWORD);
    cleanups.push(() => server.close());
    ws.write('data/a.csv', 'a\n');
    fs.mkdirSync(ws.path('drop'));
    const config = testConfig({
      watch: [{ file: 'data/a.csv' }, { dir: 'drop', stableMs: 0 }],
      transport: server.transport,
      heartbeat: { intervalSec: 1, name: 'logger-t' },
    });
    const master = new TaskMaster(config, { cwd: ws.dir });
    cleanups.push(() => master.stop());
    const events: HealthDocument[] = [];
    master.on('health', (document) => events.push(document));
    const remote = path.join(root, 'in/.pushtask/logger-t.json');
    const local = path.join(master.config.spoolDir, 'health.json');
    await master.start();

    await waitFor(() => readHealth(remote)?.sinceStart.uploads === 1, 'a status file after the first upload');
    const first = readHealth(remote)!;
    expect(first).toMatchObject({ schema: 1, name: 'logger-t', heartbeatSec: 11, failingSince: null, lastError: null });
    expect(first.queue.files).toBe(0);
    expect(fs.readFileSync(path.join(root, 'in/logger-t.heartbeat'), 'utf8')).toBe('11\n'); // pysubtask's format kept

    // 1. The server refuses one file (a folder sits where it goes): heartbeats still get through,
    //    so the remote status shows the stuck file and the error.
    fs.mkdirSync(path.join(root, 'in/stuck.txt'));
    ws.write('drop/stuck.txt', 'x'.repeat(1000));
    await waitFor(() => {
      const doc = readHealth(remote);
      return doc !== null && doc.queue.files === 1 && doc.failingSince !== null;
    }, 'the remote status to show the refused file', 30_000);
    const failing = readHealth(remote)!;
    expect(failing.queue.bytes).toBe(1000);
    expect(failing.lastError?.code).toBeTruthy();
    expect(Date.parse(failing.queue.oldestQueuedAt!)).toBeLessThanOrEqual(Date.parse(failing.writtenAt));
    fs.rmdirSync(path.join(root, 'in/stuck.txt'));
    await waitFor(() => {
      const doc = readHealth(remote);
      return doc !== null && doc.queue.files === 0 && doc.failingSince === null;
    }, 'the remote status to clear after the file got through', 30_000);

    // 2. The server is down: the queue grows, in the spool's status (uploaded when it is back) and in the events.
    await server.down();
    for (let i = 0; i < 3; i += 1) ws.write(`drop/f${i}.txt`, `file ${i}\n`);
    await waitFor(() => {
      const doc = readHealth(local);
      return doc !== null && doc.queue.files === 3 && doc.failingSince !== null && doc.connection.state !== 'connected';
    }, 'the spool status to show three queued files and the failure', 15_000);
    expect(events.some((doc) => doc.queue.files === 3 && doc.lastError !== null)).toBe(true);
    const down = readHealth(local)!;
    expect(down.total.failures).toBeGreaterThan(0);
    expect(Object.values(down.sinceStart.failuresByCode).reduce((a, b) => a + b, 0)).toBe(down.sinceStart.failures);

    await server.up();
    await waitFor(() => {
      const doc = readHealth(remote);
      return doc !== null && doc.queue.files === 0 && doc.failingSince === null && doc.sinceStart.uploads >= 5;
    }, 'the remote status to clear after recovery', 20_000);
    const after = readHealth(remote)!;
    for (const file of [remote, local]) expect(fs.readFileSync(file, 'utf8')).not.toContain(PASSWORD);
    expect(after.lastError).not.toBeNull(); // the last error stays, as history
    expect(after.connection.state).toBe('connected');
    for (let i = 0; i < 3; i += 1) expect(fs.readFileSync(path.join(root, `in/f${i}.txt`), 'utf8')).toBe(`file ${i}\n`);

    // 3. Totals survive a restart; counters since start begin again.
    await master.stop({ forceKill: false });
    const totals = readHealth(local)!.total;
    expect(totals.uploads).toBeGreaterThanOrEqual(5);
    const again = new TaskMaster(config, { cwd: ws.dir });
    cleanups.push(() => again.stop());
    const seen: HealthDocument[] = [];
    again.on('health', (document) => seen.push(document));
    await again.start();
    await waitFor(() => seen.length > 0, 'the restarted agent to report its health');
    expect(seen[0]!.total.uploads).toBeGreaterThanOrEqual(totals.uploads);
    expect(seen[0]!.total.failures).toBe(totals.failures);
    expect(seen[0]!.sinceStart.failures).toBe(0);
  });
});
