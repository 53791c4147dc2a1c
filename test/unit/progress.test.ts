import { describe, expect, it } from 'vitest';
import type { ProgressEvent } from '../../src/shared/ipc.js';
import { progressReporter } from '../../src/subtask/progress.js';

describe('progressReporter', () => {
  it('stays silent for a short upload, then reports at most once per interval', () => {
    let now = 1000;
    const events: ProgressEvent[] = [];
    const report = progressReporter({ file: '/d/big.bin', remotePath: 'big.bin', total: 100, emit: (e) => events.push(e), everyMs: 250, now: () => now });
    for (const [at, bytes] of [[1000, 1], [1100, 2], [1249, 3]] as const) {
      now = at;
      report(bytes);
    }
    expect(events).toEqual([]);
    now = 1250;
    report(10);
    now = 1300;
    report(20);
    now = 1499;
    report(30);
    now = 1500;
    report(40);
    expect(events).toEqual([
      { file: '/d/big.bin', remotePath: 'big.bin', bytes: 10, total: 100, ms: 250 },
      { file: '/d/big.bin', remotePath: 'big.bin', bytes: 40, total: 100, ms: 500 },
    ]);
  });
});
