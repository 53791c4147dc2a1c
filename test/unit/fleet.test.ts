import { describe, expect, it } from 'vitest';
import { formatFleet } from '../../src/cli/fleetTable.js';
import { HEALTH_MAX_BYTES, emptyCounters, parseHealth, serializeHealth, type HealthDocument } from '../../src/health/document.js';
import { CHECK_EXIT, DEFAULT_THRESHOLDS, checkLine, clientView, summarize, worstFirst, type ClientView } from '../../src/monitor/fleet.js';
import { assess } from '../../src/monitor/heartbeats.js';
import { BacklogHistory } from '../../src/monitor/history.js';

const NOW = Date.parse('2026-05-06T12:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

function doc(overrides: Partial<HealthDocument> = {}): HealthDocument {
  return {
    schema: 1,
    pushtask: '0.1.0',
    name: 'pi',
    host: 'pi.local',
    startedAt: iso(NOW - 3_600_000),
    writtenAt: iso(NOW - 5000),
    heartbeatSec: 70,
    connection: { state: 'connected', since: iso(NOW - 60_000), nextRetryAt: null },
    queue: { files: 0, bytes: 0, oldestQueuedAt: null },
    lastUploadAt: iso(NOW - 10_000),
    failingSince: null,
    lastError: null,
    sinceStart: { ...emptyCounters(), notifies: 3 },
    total: emptyCounters(),
    spoolDisk: { freeBytes: 1e9, totalBytes: 2e9 },
    ...overrides,
  };
}

/** A client whose heartbeat is `ageSec` old (holding 70 s) with this status file. */
function client(name: string, ageSec: number, status: HealthDocument | null, thresholds = DEFAULT_THRESHOLDS): ClientView {
  const report = assess({ name: `${name}.heartbeat`, kind: 'file', size: 3, mtime: new Date(NOW - ageSec * 1000) }, { text: '70\n' }, NOW);
  return clientView(report, status ? { document: status } : null, NOW, thresholds);
}

describe('health document', () => {
  it('stays under 2 KiB whatever the names, messages and failure codes', () => {
    const codes = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`SOME_LONG_ERROR_CODE_NUMBER_${i}`.repeat(3), i + 1]));
    const big = doc({
      name: 'n'.repeat(5000),
      host: 'h'.repeat(5000),
      lastError: { at: iso(NOW), code: 'C'.repeat(500), message: 'm'.repeat(100_000) },
      sinceStart: { uploads: 1e15, bytes: 1e18, failures: 1e15, failuresByCode: codes, notifies: 1e15 },
      total: { uploads: 1e15, bytes: 1e18, failures: 1e15, failuresByCode: codes },
    });
    const text = serializeHealth(big);
    expect(Buffer.byteLength(text)).toBeLessThan(HEALTH_MAX_BYTES);
    const parsed = parseHealth(text);
    expect('document' in parsed && parsed.document.total.failuresByCode.OTHER).toBeGreaterThan(0);
    expect(Buffer.byteLength(serializeHealth(doc()))).toBeLessThan(1024);
    // JSON escapes make a control character six bytes: the bound holds even then.
    const nasty = '\u0001'.repeat(5000);
    const escaped = doc({
      name: nasty,
      host: nasty,
      pushtask: nasty,
      lastError: { at: iso(NOW), code: nasty, message: nasty },
      sinceStart: { uploads: 1, bytes: 1, failures: 1, failuresByCode: { [nasty]: 1, [`${nasty}x`]: 2 }, notifies: 1 },
      total: { uploads: 1, bytes: 1, failures: 1, failuresByCode: { [nasty]: 1, [`${nasty}y`]: 2 } },
    });
    expect(Buffer.byteLength(serializeHealth(escaped))).toBeLessThanOrEqual(HEALTH_MAX_BYTES);
    expect('document' in parseHealth(serializeHealth(escaped))).toBe(true);
  });

  it('reads a newer schema for the fields it knows, and names what is wrong otherwise', () => {
    const newer = parseHealth(JSON.stringify({ ...doc(), schema: 2, somethingNew: { x: 1 } }));
    expect('document' in newer && newer.document.queue.files).toBe(0);
    expect(parseHealth('{')).toEqual({ problem: 'the status file is not JSON' });
    expect(parseHealth(JSON.stringify({ ...doc(), queue: { files: 'many' } }))).toMatchObject({ problem: expect.stringContaining('queue.files') });
  });
});

describe('clientView: thresholds', () => {
  it('is ok when online, with no backlog and no failure', () => {
    expect(client('a', 5, doc())).toMatchObject({ state: 'online', level: 'ok', reasons: [], backlogFiles: 0, oldestPendingSec: null });
  });

  it('offline is critical by default, or what --offline says', () => {
    expect(client('a', 100, doc())).toMatchObject({ state: 'offline', level: 'critical', reasons: ['offline'] });
    expect(client('a', 100, doc(), { ...DEFAULT_THRESHOLDS, offline: 'warning' }).level).toBe('warning');
    expect(client('a', 100, doc(), { ...DEFAULT_THRESHOLDS, offline: 'ok' }).level).toBe('ok');
  });

  it('judges the oldest pending file against the backlog thresholds', () => {
    const pending = (ageSec: number) => doc({ queue: { files: 2, bytes: 10, oldestQueuedAt: iso(NOW - ageSec * 1000) } });
    expect(client('a', 5, pending(600)).level).toBe('ok');
    expect(client('a', 5, pending(601))).toMatchObject({ level: 'warning', oldestPendingSec: 601, reasons: ['backlog older than 10 min'] });
    expect(client('a', 5, pending(3601))).toMatchObject({ level: 'critical', reasons: ['backlog older than 1 h'] });
    const strict = { ...DEFAULT_THRESHOLDS, backlogWarnSec: 10, backlogCritSec: 20 };
    expect(client('a', 5, pending(15), strict).level).toBe('warning');
    expect(client('a', 5, pending(25), strict).level).toBe('critical');
  });

  it('judges failures by how long they last', () => {
    const failing = (sinceSec: number) =>
      doc({ failingSince: iso(NOW - sinceSec * 1000), lastError: { at: iso(NOW), code: 'AUTH_FAILED', message: 'no' } });
    expect(client('a', 5, failing(1))).toMatchObject({ level: 'warning', reasons: ['failing (AUTH_FAILED)'] });
    expect(client('a', 5, failing(901))).toMatchObject({ level: 'critical', reasons: ['failing for more than 15 min (AUTH_FAILED)'] });
    expect(client('a', 5, failing(100), { ...DEFAULT_THRESHOLDS, failingWarnSec: 300 }).level).toBe('ok');
    // A last error after recovery is history, not a failure.
    expect(client('a', 5, doc({ lastError: { at: iso(NOW), code: 'X', message: 'old' } })).level).toBe('ok');
  });

  it('a client without a status file still has its online state', () => {
    expect(client('old', 5, null)).toMatchObject({ state: 'online', level: 'ok', backlogFiles: null, status: null });
    expect(client('old', 100, null)).toMatchObject({ state: 'offline', level: 'critical' });
  });
});

describe('worst first, summary and --check', () => {
  const pending = (ageSec: number) => doc({ queue: { files: 1, bytes: 1, oldestQueuedAt: iso(NOW - ageSec * 1000) } });
  const fleet = [client('fine', 5, doc()), client('gone', 100, doc()), client('behind', 5, pending(700)), client('older', 5, null), client('gone2', 200, null)];

  it('sorts critical before warning before ok, offline first, then the oldest backlog', () => {
    expect([...fleet].sort(worstFirst).map((c) => c.client)).toEqual(['gone', 'gone2', 'behind', 'fine', 'older']);
  });

  it('exits with the worst level: 0 ok, 1 warning, 2 critical', () => {
    const level = (clients: ClientView[]) => CHECK_EXIT[summarize(clients).level];
    expect(level([fleet[0]!, fleet[3]!])).toBe(0);
    expect(level([fleet[0]!, fleet[2]!])).toBe(1);
    expect(level(fleet)).toBe(2);
    expect(level([])).toBe(1); // no client at all: probably the wrong folder
    const line = checkLine(summarize(fleet), fleet.sort(worstFirst));
    expect(line).toMatch(/^PUSHTASK CRITICAL - 5 client\(s\): 3 online, 2 offline, 0 unknown; critical: gone \(offline\), gone2 \(offline\); warning: behind \(backlog older than 10 min\) \| clients=5 /);
  });

  it('prints a table with backlog, oldest pending and last upload', () => {
    const text = formatFleet({ clients: [...fleet].sort(worstFirst), summary: summarize(fleet), target: 'local folder /r' }, NOW);
    const lines = text.split('\n');
    expect(lines[0]).toBe('Heartbeats in local folder /r: 3 online, 2 offline; 2 critical, 1 warning');
    expect(lines[1]).toMatch(/^CLIENT +STATE +LEVEL +LAST SEEN +BACKLOG +OLDEST +LAST UPLOAD +DETAIL$/);
    expect(lines[2]).toMatch(/^gone +OFFLINE +CRITICAL +\S+ \(1 min 40 s ago\) +0 \(0 B\) +\S+ \(10 s ago\) +overdue since/);
    expect(text).toMatch(/\nbehind +online +WARNING .* 1 \(1 B\) +11 min 40 s /);
    expect(text).toMatch(/\nolder +online +ok +\S+ \(5 s ago\) +- +next heartbeat due/);
  });
});

describe('BacklogHistory', () => {
  it('keeps the whole lifetime in a bounded number of points', () => {
    const history = new BacklogHistory(10);
    for (let t = 0; t < 1000; t += 1) history.add('a', { t, files: t, bytes: t, online: true });
    const points = history.get('a');
    expect(points.length).toBeLessThanOrEqual(10);
    expect(points[0]!.t).toBeLessThan(200);
    expect(points.at(-1)!.t).toBe(999);
    history.retain(new Set(['b']));
    expect(history.get('a')).toEqual([]);
  });
});
