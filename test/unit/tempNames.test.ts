import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/shared/logger.js';
import { StrayTemps } from '../../src/transports/strayTemps.js';
import { remoteTempName } from '../../src/transports/tempNames.js';

describe('remote temporary names', () => {
  it('are stable per (agent, file), differ between agents and files, hidden, and ours to remove', async () => {
    const name = remoteTempName('in/deep/report.csv', 'a1b2c3d4e5f60718');
    expect(remoteTempName('in/deep/report.csv', 'a1b2c3d4e5f60718')).toBe(name);
    expect(remoteTempName('in/deep/report.csv', 'ffffffffffffffff')).not.toBe(name);
    expect(remoteTempName('in/deep/other.csv', 'a1b2c3d4e5f60718')).not.toBe(name);
    expect(name).toMatch(/^in\/deep\/\.report\.csv\.[0-9a-f]{12}\.pushtask-tmp$/);
    // Long names are shortened (by bytes), two long names sharing their start still differ.
    const long = 'x'.repeat(300);
    expect(remoteTempName(`${long}a`, 't')).not.toBe(remoteTempName(`${long}b`, 't'));
    expect(Buffer.byteLength(remoteTempName(`${long}a`, 't'))).toBeLessThan(140);
    const strays = new StrayTemps();
    strays.note(name);
    strays.note('in/deep/report.csv'); // never a final name
    const removed: string[] = [];
    await strays.removeWith(async (path) => void removed.push(path), silentLogger(), 'test');
    expect(removed).toEqual([name]);
  });
});
