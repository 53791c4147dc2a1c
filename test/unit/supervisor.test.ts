import { describe, expect, it } from 'vitest';
import { RESTART_MIN_MS } from '../../src/master/restartBackoff.js';
import { Supervisor, type Clock, type ExitInfo, type SupervisedChild, type SupervisorExit } from '../../src/master/supervisor.js';

/** A manual clock: timers fire only when the test advances time. */
class FakeClock implements Clock {
  #now = 0;
  #timers = new Map<number, { at: number; callback: () => void }>();
  #nextId = 1;
  now(): number {
    return this.#now;
  }
  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + ms, callback });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }
  get pending(): number {
    return this.#timers.size;
  }
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      await settle();
      const due = [...this.#timers].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.#timers.delete(due[0]);
      this.#now = due[1].at;
      due[1].callback();
    }
    this.#now = end;
    await settle();
  }
}

const settle = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

let nextPid = 100;

/** A child whose life the test drives: ready(), fail(), die(); kill() ends it like SIGKILL. */
class FakeChild implements SupervisedChild {
  readonly pid = nextPid++;
  readonly ready: Promise<void>;
  readonly exited: Promise<ExitInfo>;
  alive = true;
  killed = false;
  gracefulStops: number[] = [];
  #ready!: () => void;
  #fail!: (error: Error) => void;
  #exit!: (exit: ExitInfo) => void;
  constructor() {
    this.ready = new Promise((resolve, reject) => {
      this.#ready = resolve;
      this.#fail = reject;
    });
    this.ready.catch(() => undefined);
    this.exited = new Promise((resolve) => {
      this.#exit = resolve;
    });
  }
  reportReady(): void {
    this.#ready();
  }
  fail(message: string): void {
    this.#fail(new Error(message));
  }
  die(exit: ExitInfo = { code: 1, signal: null }): void {
    if (!this.alive) return;
    this.alive = false;
    this.#fail(new Error('exited before ready'));
    this.#exit(exit);
  }
  async kill(): Promise<ExitInfo> {
    if (this.alive) {
      this.killed = true;
      this.die({ code: null, signal: 'SIGKILL' });
    }
    return this.exited;
  }
  async stopGracefully(timeoutMs: number): Promise<ExitInfo> {
    this.gracefulStops.push(timeoutMs);
    this.die({ code: 0, signal: null });
    return this.exited;
  }
}

function setup(readyTimeoutMs = 1000) {
  const clock = new FakeClock();
  const children: FakeChild[] = [];
  const readies: { pid: number; restart: boolean }[] = [];
  const exits: SupervisorExit[] = [];
  const supervisor = new Supervisor<FakeChild>({
    spawn: () => {
      const child = new FakeChild();
      children.push(child);
      return child;
    },
    clock,
    readyTimeoutMs,
    onReady: (child, restart) => readies.push({ pid: child.pid, restart }),
    onExit: (exit) => exits.push(exit),
  });
  const last = () => children[children.length - 1]!;
  return { clock, children, readies, exits, supervisor, last };
}

async function started(s: ReturnType<typeof setup>) {
  const start = s.supervisor.start();
  await settle();
  s.last().reportReady();
  await start;
  expect(s.supervisor.state).toBe('running');
}

describe('Supervisor', () => {
  it('starts a child and resolves once it reports ready', async () => {
    const s = setup();
    await started(s);
    expect(s.readies).toEqual([{ pid: s.children[0]!.pid, restart: false }]);
    expect(s.clock.pending).toBe(0); // the ready timer is gone
  });

  it('fails start() and kills a first child that does not report ready in time', async () => {
    const s = setup(1000);
    const start = s.supervisor.start();
    const outcome = start.then(() => 'resolved', (error: Error) => error.message);
    await s.clock.advance(999);
    expect(s.children[0]!.alive).toBe(true);
    await s.clock.advance(1);
    expect(await outcome).toMatch(/did not report ready within 1 s/);
    expect(s.children[0]!.killed).toBe(true);
    expect(s.supervisor.state).toBe('stopped');
    expect(s.children).toHaveLength(1); // no restart of a failed first start
  });

  it('fails start() when the first child reports a fatal error', async () => {
    const s = setup();
    const start = s.supervisor.start();
    await settle();
    s.last().fail('bad transport');
    await expect(start).rejects.toThrow('bad transport');
    expect(s.children[0]!.alive).toBe(false);
  });

  it('restarts a child that died through the backoff: 1 s, then 2 s on a crash loop', async () => {
    const s = setup();
    await started(s);
    s.children[0]!.die({ code: null, signal: 'SIGKILL' });
    await settle();
    expect(s.exits).toEqual([{ code: null, signal: 'SIGKILL', pid: s.children[0]!.pid, restartInMs: RESTART_MIN_MS }]);
    expect(s.supervisor.state).toBe('waiting');
    await s.clock.advance(RESTART_MIN_MS - 1);
    expect(s.children).toHaveLength(1);
    await s.clock.advance(1);
    expect(s.children).toHaveLength(2);
    expect(s.supervisor.state).toBe('restarting');
    s.last().reportReady();
    await settle();
    expect(s.readies.at(-1)).toEqual({ pid: s.children[1]!.pid, restart: true });
    s.last().die();
    await settle();
    expect(s.exits.at(-1)!.restartInMs).toBe(2 * RESTART_MIN_MS);
  });

  it('kills a restarted child that does not report ready in time and restarts it again, with a longer delay', async () => {
    const s = setup(5000);
    await started(s);
    s.children[0]!.die();
    await s.clock.advance(RESTART_MIN_MS);
    const hung = s.children[1]!;
    await s.clock.advance(4999);
    expect(hung.alive).toBe(true);
    await s.clock.advance(1);
    expect(hung.killed).toBe(true);
    expect(s.exits.at(-1)).toMatchObject({ pid: hung.pid, signal: 'SIGKILL', restartInMs: 2 * RESTART_MIN_MS });
    expect(s.exits.at(-1)!.reason).toMatch(/did not report ready within 5 s/);
    await s.clock.advance(2 * RESTART_MIN_MS);
    expect(s.children).toHaveLength(3);
    s.last().reportReady();
    await settle();
    expect(s.supervisor.state).toBe('running');
    expect(s.readies.at(-1)).toEqual({ pid: s.children[2]!.pid, restart: true });
  });

  it('kills a restarted child that reports a fatal error, and tries again', async () => {
    const s = setup();
    await started(s);
    s.children[0]!.die();
    await s.clock.advance(RESTART_MIN_MS);
    s.children[1]!.fail('spool unreadable');
    await settle();
    expect(s.children[1]!.killed).toBe(true);
    expect(s.exits.at(-1)!.reason).toBe('spool unreadable');
    await s.clock.advance(2 * RESTART_MIN_MS);
    expect(s.children).toHaveLength(3);
  });

  it('stop() during start() cancels it: the child is killed, start() fails, stop() again resolves', async () => {
    const s = setup();
    const start = s.supervisor.start();
    const outcome = start.then(() => 'resolved', (error: { code?: string }) => error.code);
    await settle();
    const stop = s.supervisor.stop();
    expect(s.supervisor.stop()).toBe(stop);
    await stop;
    expect(await outcome).toBe('ABORTED');
    expect(s.children[0]!.killed).toBe(true);
    expect(s.supervisor.state).toBe('stopped');
    // A ready that comes late changes nothing; no timer is left to restart anything.
    s.children[0]!.reportReady();
    await s.clock.advance(60_000);
    expect(s.children).toHaveLength(1);
    expect(s.readies).toEqual([]);
    await s.supervisor.stop();
  });

  it('stop() while waiting for a restart cancels the restart', async () => {
    const s = setup();
    await started(s);
    s.children[0]!.die();
    await settle();
    await s.supervisor.stop();
    await s.clock.advance(60_000);
    expect(s.children).toHaveLength(1);
    expect(s.clock.pending).toBe(0);
  });

  it('stop() while a restarted child is not ready kills it without waiting for the ready timeout', async () => {
    const s = setup();
    await started(s);
    s.children[0]!.die();
    await s.clock.advance(RESTART_MIN_MS);
    await s.supervisor.stop({ gracefulTimeoutMs: 3000 });
    expect(s.children[1]!.killed).toBe(true);
    expect(s.children[1]!.gracefulStops).toEqual([]);
    expect(s.clock.pending).toBe(0);
    expect(s.exits).toHaveLength(1); // the stop is no unexpected exit
  });

  it('stops a running child gracefully when asked, and reports no unexpected exit', async () => {
    const s = setup();
    await started(s);
    await s.supervisor.stop({ gracefulTimeoutMs: 3000 });
    expect(s.children[0]!.gracefulStops).toEqual([3000]);
    expect(s.exits).toEqual([]);
    await s.clock.advance(60_000);
    expect(s.children).toHaveLength(1);
  });

  it('a child that exits before ready without saying why fails start() as well', async () => {
    const s = setup();
    const start = s.supervisor.start();
    await settle();
    s.children[0]!.die({ code: 3, signal: null });
    await expect(start).rejects.toThrow();
    expect(s.supervisor.state).toBe('stopped');
    expect(s.clock.pending).toBe(0);
  });
});
