import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseHealth } from '../../src/health/document.js';
import { HealthTracker, type AgentView, type Backlog } from '../../src/health/tracker.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function setup(start = 1_000_000) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-health-'));
  dirs.push(dir);
  let now = start;
  const backlog: Backlog = { files: 0, bytes: 0, oldestQueuedAt: null };
  const agent: AgentView = {
    connection: { state: 'connected', since: new Date(start).toISOString(), nextRetryAt: null },
    counters: { notifies: 0 },
    lastError: null,
    startedAt: new Date(start).toISOString(),
  };
  const make = () =>
    new HealthTracker({
      spoolDir: dir,
      name: 'pi',
      heartbeatSec: 70,
      version: '9.9.9',
      agent: () => agent,
      backlog: () => backlog,
      ignoredRemotePaths: new Set(['pi.heartbeat', '.pushtask/pi.json']),
      now: () => now,
    });
  return { dir, backlog, agent, make, tick: (ms: number) => (now += ms) };
}

const failed = (file: string, code = 'CONNECT_FAILED') => ({ file, error: { code, message: 'no' }, willRetry: true });

describe('HealthTracker', () => {
  it('counts data uploads, not heartbeats, and failures by code', async () => {
    const { make } = setup();
    const tracker = make();
    tracker.observe('uploaded', { file: '/d/a.csv', remotePath: 'a.csv', bytes: 10, ms: 1 });
    tracker.observe('uploaded', { file: '/d/pi.heartbeat', remotePath: 'pi.heartbeat', bytes: 3, ms: 1 });
    tracker.observe('upload-failed', failed('/d/b.csv'));
    tracker.observe('upload-failed', failed('/d/b.csv', 'TIMEOUT'));
    const doc = await tracker.document();
    expect(doc.sinceStart).toMatchObject({ uploads: 1, bytes: 10, failures: 2, failuresByCode: { CONNECT_FAILED: 1, TIMEOUT: 1 } });
    expect(doc.total).toEqual({ uploads: 1, bytes: 10, failures: 2, failuresByCode: { CONNECT_FAILED: 1, TIMEOUT: 1 } });
  });

  it('is failing from the first failure until every failing file got through', async () => {
    const { make, tick } = setup();
    const tracker = make();
    tracker.observe('upload-failed', failed('/d/a'));
    const since = (await tracker.document()).failingSince;
    expect(since).toBe(new Date(1_000_000).toISOString());
    tick(5000);
    tracker.observe('upload-failed', failed('/d/b'));
    expect((await tracker.document()).failingSince).toBe(since); // still the first one
    tracker.observe('uploaded', { file: '/d/a', remotePath: 'a', bytes: 1, ms: 1 });
    expect((await tracker.document()).failingSince).toBe(since);
    tracker.observe('uploaded', { file: '/d/b', remotePath: 'b', bytes: 1, ms: 1 });
    expect((await tracker.document()).failingSince).toBeNull();
    // A failure that will not be retried (a name that can never be a remote path) is history only.
    tracker.observe('upload-failed', { ...failed('/d/bad'), willRetry: false });
    expect((await tracker.document()).failingSince).toBeNull();
  });

  it('asks for a fresh status file once an outage that the last one showed is over', async () => {
    const { make, backlog } = setup();
    const tracker = make();
    await tracker.write();
    expect(tracker.recovered()).toBe(false); // nothing to recover from
    tracker.observe('upload-failed', failed('/d/a'));
    backlog.files = 3;
    await tracker.write(); // the status during the outage
    expect(tracker.recovered()).toBe(false);
    backlog.files = 0;
    expect(tracker.recovered()).toBe(false); // queue empty but /d/a still failing
    tracker.observe('uploaded', { file: '/d/a', remotePath: 'a', bytes: 1, ms: 1 });
    expect(tracker.recovered()).toBe(true);
    await tracker.write();
    expect(tracker.recovered()).toBe(false); // once
  });

  it('keeps the totals and the last upload in the spool for the next start', async () => {
    const { make, dir } = setup();
    const first = make();
    first.observe('uploaded', { file: '/d/a', remotePath: 'a', bytes: 100, ms: 1 });
    first.observe('upload-failed', failed('/d/a', 'AUTH_FAILED'));
    await first.write();
    const parsed = parseHealth(fs.readFileSync(path.join(dir, 'health.json'), 'utf8'));
    expect('document' in parsed && parsed.document.pushtask).toBe('9.9.9');
    const second = make();
    await second.load();
    second.observe('uploaded', { file: '/d/b', remotePath: 'b', bytes: 5, ms: 1 });
    const doc = await second.document();
    expect(doc.total).toEqual({ uploads: 2, bytes: 105, failures: 1, failuresByCode: { AUTH_FAILED: 1 } });
    expect(doc.sinceStart).toMatchObject({ uploads: 1, bytes: 5, failures: 0 });
    expect(doc.lastUploadAt).not.toBeNull();
  });

  it('starts from zero with a damaged or missing file', async () => {
    const { make, dir } = setup();
    fs.writeFileSync(path.join(dir, 'health.json'), '{ torn');
    const tracker = make();
    await tracker.load();
    expect((await tracker.document()).total.uploads).toBe(0);
  });
});
