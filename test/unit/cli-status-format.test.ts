/** The readable summary of status.json printed by `pushtask status` and the demo's `s`. */
import { describe, expect, it } from 'vitest';
import { formatStatus } from '../../src/cli/statusFormat.js';
import { formatBytes } from '../../src/cli/format.js';
import type { AgentStatus } from '../../src/subtask/status.js';

const NOW = Date.parse('2026-11-23T10:00:00Z');
const ago = (s: number) => new Date(NOW - s * 1000).toISOString();

function sample(overrides: Partial<AgentStatus> = {}): AgentStatus {
  return {
    pid: 4242,
    startedAt: ago(600),
    updatedAt: ago(1),
    running: true,
    transport: 'local folder /data/remote',
    connection: { state: 'waiting-to-retry', since: ago(5), nextRetryAt: new Date(NOW + 25_000).toISOString() },
    queue: {
      length: 2,
      bytes: 3072,
      items: [
        { file: '/data/logs/a.csv', remotePath: 'a.csv', bytes: 1024, queuedAt: ago(4) },
        { file: '/data/logs/b.csv', remotePath: 'b.csv', bytes: 2048, queuedAt: ago(3) },
      ],
    },
    inFlight: [{ file: '/data/logs/c.csv', remotePath: 'c.csv', bytes: 10, queuedAt: ago(3), startedAt: ago(2) }],
    counters: { notifies: 12, uploads: 9, bytesUploaded: 5 * 1024 * 1024, failures: 1 },
    heartbeat: null,
    lastError: { at: ago(5), file: '/data/logs/a.csv', code: 'UPLOAD_FAILED', message: 'Copy failed: ENOSPC' },
    files: {
      '/data/logs/a.csv': {
        lastUpload: { at: ago(60), bytes: 900, ms: 3, remotePath: 'a.csv' },
        lastError: { at: ago(5), code: 'UPLOAD_FAILED', message: 'Copy failed: ENOSPC' },
      },
    },
    ...overrides,
  };
}

describe('formatStatus', () => {
  it('summarises connection, queue, in-flight uploads, counters, last error and per-file results', () => {
    const text = formatStatus(sample(), { now: NOW, base: '/data', isAlive: () => true });
    expect(text).toMatch(/^Agent: +running \(pid 4242, since .*\(10 min 0 s ago\)\)$/m);
    expect(text).toMatch(/^Transport: +local folder \/data\/remote$/m);
    expect(text).toMatch(/^Connection: +waiting-to-retry since .*\(5 s ago\), next try .*\(in 25 s\)$/m);
    expect(text).toMatch(/^Queue: +2 file\(s\), 3\.0 KiB\n +logs\/a\.csv \(1\.0 KiB\)\n +logs\/b\.csv \(2\.0 KiB\)$/m);
    expect(text).toMatch(/^In flight: +1 upload\(s\)\n +logs\/c\.csv → c\.csv \(10 B, since .*\)$/m);
    expect(text).toMatch(/^Counters: +12 notifies, 9 uploads \(5\.0 MiB\), 1 failures$/m);
    expect(text).toMatch(/^Last error: +.* logs\/a\.csv: Copy failed: ENOSPC \[UPLOAD_FAILED\]$/m);
    expect(text).toMatch(/^ {2}logs\/a\.csv\n {4}last upload .*\(1 min 0 s ago\) → a\.csv \(900 B, 3 ms\)\n {4}last error .*ENOSPC/m);
  });

  it('never shows a connection state for an agent that is not running', () => {
    // What a stop used to leave: "Agent: stopped" above "Connection: connecting".
    const stale = { state: 'connecting' as const, since: ago(5), nextRetryAt: null };
    expect(formatStatus(sample({ running: false, connection: stale }), { now: NOW })).toMatch(/^Connection: +none \(the agent is not running\)$/m);
    expect(formatStatus(sample({ connection: stale }), { now: NOW, isAlive: () => false })).toMatch(/^Connection: +none \(the agent is not running\)$/m);
    expect(formatStatus(sample({ connection: stale }), { now: NOW, isAlive: () => true })).toMatch(/^Connection: +connecting since/m);
  });

  it('says how many older files are only in the counters', () => {
    expect(formatStatus(sample({ olderFiles: 2500 }), { now: NOW, isAlive: () => true })).toMatch(/^Files: the 1 most recently active \(2500 older ones are in the counters\)$/m);
  });

  it('tells a stopped agent, and a "running" one whose process is gone', () => {
    expect(formatStatus(sample({ running: false }), { now: NOW })).toMatch(/^Agent: +stopped$/m);
    const gone = formatStatus(sample(), { now: NOW, isAlive: () => false });
    expect(gone).toMatch(/^Agent: +not running: pid 4242 is gone without a clean stop/m);
  });

  it('says when nothing happened yet', () => {
    const text = formatStatus(
      sample({ queue: { length: 0, bytes: 0, items: [] }, inFlight: [], lastError: null, files: {} }),
      { now: NOW, isAlive: () => true },
    );
    expect(text).toMatch(/^In flight: +nothing$/m);
    expect(text).toMatch(/^Last error: +none$/m);
    expect(text).toMatch(/^Files: +none uploaded yet$/m);
  });
});

describe('formatBytes', () => {
  it('uses binary units', () => {
    expect([0, 1023, 1024, 1536, 10 * 1024 * 1024, 3 * 1024 ** 3].map(formatBytes)).toEqual([
      '0 B',
      '1023 B',
      '1.0 KiB',
      '1.5 KiB',
      '10 MiB',
      '3.0 GiB',
    ]);
  });
});
