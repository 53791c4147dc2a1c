/** status.json stays small however many files pass through (issue 13): real files in a temp spool. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_LISTED_FILES, StatusReporter, type AgentStatus } from '../../src/subtask/status.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-status-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const read = (reporter: StatusReporter) => JSON.parse(fs.readFileSync(reporter.file, 'utf8')) as AgentStatus;

describe('StatusReporter', () => {
  it('keeps per-file entries for the most recently active files only; the counters keep the totals', async () => {
    const reporter = new StatusReporter(dir);
    for (let i = 0; i < 5000; i++) reporter.recordUpload(`/drop/f${i}.csv`, `f${i}.csv`, 10, 1);
    reporter.recordError({ code: 'UPLOAD_FAILED', message: 'refused' }, '/drop/f0.csv'); // active again
    await reporter.flush();
    const status = read(reporter);
    expect(Object.keys(status.files)).toHaveLength(MAX_LISTED_FILES);
    expect(Object.keys(status.files).at(-1)).toBe('/drop/f0.csv');
    expect(status.files['/drop/f4999.csv']?.lastUpload?.remotePath).toBe('f4999.csv');
    expect(status.files['/drop/f100.csv']).toBeUndefined();
    expect(status.olderFiles).toBe(5000 - MAX_LISTED_FILES);
    expect(status.counters).toMatchObject({ uploads: 5000, bytesUploaded: 50_000, failures: 1 });
    expect(fs.statSync(reporter.file).size).toBeLessThan(40_000);
  });

  it('keeps the entry of a file in flight however old its last activity', async () => {
    const reporter = new StatusReporter(dir);
    reporter.recordUpload('/drop/big.bin', 'big.bin', 1, 1);
    const snapshot = { source: '/drop/big.bin', remotePath: 'big.bin', size: 1 << 30, queuedAt: Date.now() };
    reporter.setQueueSource(() => ({ pending: [], inFlight: [{ snapshot, startedAt: Date.now() }] }));
    for (let i = 0; i < 300; i++) reporter.recordUpload(`/drop/f${i}.csv`, `f${i}.csv`, 10, 1);
    await reporter.flush();
    expect(read(reporter).files['/drop/big.bin']).toBeDefined();
  });

  it('writes no connection state for a stopped agent', async () => {
    const reporter = new StatusReporter(dir);
    reporter.setConnection('connecting');
    await reporter.close();
    expect(read(reporter)).toMatchObject({ running: false, connection: { state: 'disconnected', nextRetryAt: null } });
  });
});
