import { describe, expect, it } from 'vitest';
import { formatFleet } from '../../src/cli/fleetTable.js';
import { summarize } from '../../src/monitor/fleet.js';
import { assess, isHeartbeatEntry, parseHeartbeat } from '../../src/monitor/heartbeats.js';
import type { RemoteEntry } from '../../src/transports/types.js';

const NOW = Date.parse('2026-05-06T12:00:00Z');
const entry = (name: string, mtime: number, kind: RemoteEntry['kind'] = 'file'): RemoteEntry => ({ name, kind, size: 3, mtime: new Date(mtime) });

describe('parseHeartbeat', () => {
  it('reads the seconds on the first line, as pushtask and pysubtask write them', () => {
    expect(parseHeartbeat('70\n')).toBe(70);
    expect(parseHeartbeat(' 11 \r\nextra')).toBe(11);
    for (const bad of ['', '\n', '0', '-5', '7.5', 'sixty', '1e3', '9999999999']) expect(parseHeartbeat(bad)).toBeNull();
  });
});

describe('assess: pysubtask online rule (offline once now > mtime + seconds)', () => {
  it('is online up to and including the due moment, offline after it', () => {
    const at = (ageMs: number) => assess(entry('pi.heartbeat', NOW - ageMs), { text: '70\n' }, NOW);
    expect(at(70_000)).toMatchObject({ client: 'pi', state: 'online', graceSec: 70, lastSeenAgoSec: 70 });
    expect(at(70_001).state).toBe('offline');
    expect(at(70_001).offlineAt).toBe(new Date(NOW - 1).toISOString());
  });

  it('says "unknown" with the reason when the content or the time cannot be used', () => {
    expect(assess(entry('a.heartbeat', NOW), { text: 'garbage' }, NOW)).toMatchObject({ state: 'unknown', problem: expect.stringContaining('"garbage"') });
    expect(assess(entry('b.heartbeat', NOW), { problem: 'permission denied' }, NOW)).toMatchObject({ state: 'unknown', problem: 'cannot read it: permission denied' });
    expect(assess(entry('c.heartbeat', Number.NaN), { text: '70' }, NOW)).toMatchObject({ state: 'unknown', lastSeen: null, graceSec: 70 });
  });

  it('a client clock ahead of ours shows as seen in the future, and online', () => {
    expect(assess(entry('ahead.heartbeat', NOW + 30_000), { text: '20' }, NOW)).toMatchObject({ state: 'online', lastSeenAgoSec: -30 });
  });
});

describe('isHeartbeatEntry and formatFleet', () => {
  it('takes regular files named <name>.heartbeat only', () => {
    expect(isHeartbeatEntry(entry('pi.heartbeat', NOW))).toBe(true);
    expect(isHeartbeatEntry(entry('.heartbeat', NOW))).toBe(false);
    expect(isHeartbeatEntry(entry('pi.heartbeat', NOW, 'dir'))).toBe(false);
    expect(isHeartbeatEntry(entry('pi.heartbeat.tmp', NOW))).toBe(false);
  });

  it('explains an empty folder', () => {
    expect(formatFleet({ clients: [], summary: summarize([]), target: 'sftp://u@h:22/in' }, NOW)).toMatch(/^No \.heartbeat files in sftp:\/\/u@h:22\/in\.\nA client writes one when its config has heartbeat:/);
  });
});
