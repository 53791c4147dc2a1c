import { describe, expect, it } from 'vitest';
import { Slots, forEachLimited } from '../../src/shared/limit.js';

const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

describe('Slots', () => {
  it('runs at most `size` tasks at once, the others in arrival order', async () => {
    const slots = new Slots(2);
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        slots.run(async () => {
          started.push(i);
          peak = Math.max(peak, (running += 1));
          await tick();
          running -= 1;
        }),
      ),
    );
    expect(peak).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('passes results and errors through and frees the slot either way', async () => {
    const slots = new Slots(1);
    await expect(slots.run(async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    await expect(slots.run(async () => 42)).resolves.toBe(42);
  });

  it('forEachLimited visits every item', async () => {
    const seen: number[] = [];
    await forEachLimited([1, 2, 3, 4, 5], 2, async (n) => {
      await tick();
      seen.push(n);
    });
    expect(seen.sort()).toEqual([1, 2, 3, 4, 5]);
  });
});
