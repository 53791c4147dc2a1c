/** The per-connection wrapper (src/transports/lifeline.ts): pending operations fail when the connection dies. */
import { describe, expect, it } from 'vitest';
import { PushtaskError } from '../../src/shared/errors.js';
import { Lifeline, isNetworkError } from '../../src/transports/lifeline.js';
import { RateGate } from '../../src/transports/rateGate.js';

const never = <T>() => new Promise<T>(() => undefined);

describe('Lifeline', () => {
  it('fails every operation pending on a connection the moment it dies, even ones that never call back', async () => {
    let ended = 0;
    const life = new Lifeline('sftp://u@host:22/in', () => (ended += 1));
    const signal = new AbortController().signal;
    const first = life.run(signal, 'upload of a.csv', () => never());
    const second = life.run(signal, 'upload of b.csv', () => never());
    setTimeout(() => life.end('ECONNRESET'), 5);
    await expect(first).rejects.toMatchObject({ code: 'CONNECTION_LOST', message: expect.stringContaining('sftp://u@host:22/in') });
    await expect(second).rejects.toMatchObject({ code: 'CONNECTION_LOST' });
    expect(ended).toBe(1);
    // Later operations fail at once.
    await expect(life.run(signal, 'upload of c.csv', async () => 1)).rejects.toMatchObject({ code: 'CONNECTION_LOST' });
  });

  it('a stalled operation ends the connection; progress keeps it alive', async () => {
    const life = new Lifeline('ftp://host');
    const signal = new AbortController().signal;
    const moving = life.run(
      signal,
      'upload',
      async (_signal, progress) => {
        for (let i = 0; i < 6; i += 1) {
          await new Promise((resolve) => setTimeout(resolve, 10));
          progress();
        }
        return 'done';
      },
      { stallMs: 40 },
    );
    await expect(moving).resolves.toBe('done');
    const stuck = life.run(signal, 'upload of big.bin', () => never(), { stallMs: 30 });
    await expect(stuck).rejects.toThrow(/made no progress for 30 ms/);
    expect(life.dead).toBe(true);
  });

  it("the caller's abort (operation timeout, stop) fails the operation with its reason and ends the connection", async () => {
    const life = new Lifeline('ftp://host');
    const controller = new AbortController();
    const pending = life.run(controller.signal, 'upload', () => never());
    const reason = new PushtaskError('TIMEOUT', 'Upload timed out after 30000 ms');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(life.dead).toBe(true);
  });

  it('a socket error reported to the operation first still counts as a lost connection', async () => {
    const life = new Lifeline('sftp://host');
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    await expect(life.run(new AbortController().signal, 'upload', async () => Promise.reject(reset))).rejects.toMatchObject({ code: 'CONNECTION_LOST' });
    expect(isNetworkError(new Error('Permission denied'))).toBe(false);
  });

  it('a server refusal keeps its own error and the connection', async () => {
    const life = new Lifeline('sftp://host');
    const refused = new Error('Permission denied');
    await expect(life.run(new AbortController().signal, 'upload', async () => Promise.reject(refused))).rejects.toBe(refused);
    expect(life.dead).toBe(false);
  });
});

describe('RateGate', () => {
  it('holds every request until the longest pause has passed', async () => {
    let now = 0;
    const gate = new RateGate(() => now);
    gate.pause(50);
    gate.pause(10); // never shortens
    expect(gate.remainingMs).toBe(50);
    now = 60;
    await gate.wait(new AbortController().signal);
    expect(gate.remainingMs).toBe(0);
  });
});
