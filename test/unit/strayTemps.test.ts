import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/shared/logger.js';
import { StrayTemps } from '../../src/transports/strayTemps.js';

describe('StrayTemps', () => {
  it('tries each noted file once, 20 per connection, and a failed delete is logged, not thrown or kept', async () => {
    const strays = new StrayTemps();
    for (let i = 0; i < 25; i += 1) strays.note(`/in/.f${i}.x.pushtask-tmp`);
    strays.note('/in/.f0.x.pushtask-tmp'); // noted twice: one entry
    const tried: string[] = [];
    await strays.removeWith(
      async (path) => {
        tried.push(path);
        if (path.includes('f3.')) throw new Error('permission denied');
      },
      silentLogger(),
      'host:22',
    );
    expect(tried).toHaveLength(20);
    expect(new Set(tried).size).toBe(20);
    expect(strays.size).toBe(5);
    const rest: string[] = [];
    await strays.removeWith(async (path) => void rest.push(path), silentLogger(), 'host:22');
    expect(rest.sort()).toEqual(['/in/.f20.x.pushtask-tmp', '/in/.f21.x.pushtask-tmp', '/in/.f22.x.pushtask-tmp', '/in/.f23.x.pushtask-tmp', '/in/.f24.x.pushtask-tmp']);
    expect(strays.size).toBe(0);
  });

  it('notes at most 1,000 files', () => {
    const strays = new StrayTemps();
    for (let i = 0; i < 1500; i += 1) strays.note(`/.f${i}.pushtask-tmp`);
    expect(strays.size).toBe(1000);
  });
});
