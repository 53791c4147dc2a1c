import { describe, expect, it } from 'vitest';
import type { AgentStatus } from '../../src/subtask/status.js';
import { LiveDisplay, PlainDisplay } from '../../src/cli/watchDisplay.js';

const status = (length: number, inFlight = 0): AgentStatus =>
  ({
    queue: { length, bytes: length * 2048, items: [] },
    inFlight: Array.from({ length: inFlight }, () => ({})),
    connection: { state: 'connected', since: '', nextRetryAt: null },
  }) as unknown as AgentStatus;

const event = (bytes: number, ms: number) => ({ file: '/data/drop/big.bin', remotePath: 'big.bin', bytes, total: 4 * 1024 * 1024, ms });

describe('LiveDisplay (terminal)', () => {
  it('keeps a live area under the event lines and redraws it in place, at most every 250 ms', () => {
    let out = '';
    let now = 0;
    const display = new LiveDisplay({ write: (text) => (out += text), columns: () => 100, readStatus: () => status(2, 1), base: () => '/data', now: () => now });
    expect(out).toBe('queue: 2 file(s), 4.0 KiB waiting, 1 uploading; connected');

    out = '';
    now = 1000;
    display.progress(event(1024 * 1024, 1000));
    expect(out).toBe('\r\x1b[K↑ drop/big.bin → big.bin  1.0 MiB of 4.0 MiB  25 %  1.0 MiB/s\nqueue: 2 file(s), 4.0 KiB waiting, 1 uploading; connected');

    out = '';
    now = 1100;
    display.progress(event(2 * 1024 * 1024, 1100)); // too soon: drawn later by a timer; 10 MiB/s smoothed into 1 → 3.7
    expect(out).toBe('');

    display.line('12:00:00.000 uploaded  drop/small.txt → small.txt');
    // Two lines of area erased (cursor up once), the event line, the area again.
    expect(out).toBe(
      '\r\x1b[K\x1b[1A\x1b[K12:00:00.000 uploaded  drop/small.txt → small.txt\n' +
        '↑ drop/big.bin → big.bin  2.0 MiB of 4.0 MiB  50 %  3.7 MiB/s\nqueue: 2 file(s), 4.0 KiB waiting, 1 uploading; connected',
    );
    display.close();
  });

  it('never draws a line wider than the terminal (a wrapped line would not be erased)', () => {
    let out = '';
    const display = new LiveDisplay({ write: (text) => (out += text), columns: () => 30, readStatus: () => status(12345), now: () => 0 });
    for (const line of out.split('\n')) expect(line.length).toBeLessThan(30);
    display.close();
  });
});

describe('PlainDisplay (no terminal)', () => {
  it('prints a progress line once an upload has run 2 s, then every 10 s; no control characters', () => {
    let out = '';
    let now = 0;
    const display = new PlainDisplay({ write: (text) => (out += text), readStatus: () => status(0), base: () => '/data', now: () => now });
    display.progress(event(1000, 1500));
    expect(out).toBe('');
    now = 600;
    display.progress(event(500_000, 2100));
    expect(out).toMatch(/^\d\d:\d\d:\d\d\.\d{3} progress  ↑ drop\/big\.bin → big\.bin  488 KiB of 4\.0 MiB  11 %  [\d.]+ KiB\/s; queue: empty; connected\n$/);
    now = 5000;
    display.progress(event(1_000_000, 6500));
    expect(out.split('\n').length).toBe(2);
    now = 10_600;
    display.progress(event(2_000_000, 12_100));
    expect(out.split('\n').length).toBe(3);
    display.line('stopped');
    expect(out).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
  });
});
