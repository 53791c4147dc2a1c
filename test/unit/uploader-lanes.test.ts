/**
 * The uploader's lane state machine (src/subtask/uploader.ts, module comment), one test per rule,
 * on a fake transport and a manual clock: each runs in milliseconds of real time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { RetryConfig } from '../../src/config/schema.js';
import { PushtaskError, toErrorInfo } from '../../src/shared/errors.js';
import { silentLogger } from '../../src/shared/logger.js';
import type { Snapshot } from '../../src/spool/spool.js';
import { Uploader, type UploaderOptions } from '../../src/subtask/uploader.js';
import type { Transport, UploadRequest, UploadResult } from '../../src/transports/types.js';
import { ManualClock } from '../helpers/manualClock.js';

const CONNECT_MS = 200; // a login over a 100 ms round trip
const UPLOAD_MS = 100;
const RETRY: RetryConfig = { strategy: 'pysubtask', quickTries: 3, quickDelayMs: 3000, longDelayMs: 30_000, maxDelayMs: 300_000 };

/** A server the fake transports talk to: counts logins, can refuse, cut every connection, rate-limit. */
class FakeServer {
  up = true;
  logins = 0;
  connectAttempts = 0;
  readonly delivered: string[] = [];
  /** Upload attempts (started), with the clock time. */
  readonly attempts: Array<{ remotePath: string; at: number }> = [];
  /** The next upload attempts answer 429 with this Retry-After. */
  rateLimitNext = 0;
  retryAfterMs = 5000;
  /** Remote paths the server refuses (a folder sits where the file goes). */
  readonly refused = new Set<string>();
  readonly open = new Set<FakeTransport>();
  constructor(readonly clock: ManualClock) {}

  /** Every connection dies now (a reset): what is pending on them fails at once. */
  cutAll(): void {
    for (const connection of [...this.open]) connection.die();
  }
}

class FakeTransport implements Transport {
  readonly description = 'fake://server';
  #open = false;
  #pending = new Set<(error: Error) => void>();
  constructor(readonly server: FakeServer) {}

  async connect(signal: AbortSignal): Promise<void> {
    this.server.connectAttempts += 1;
    await this.#wait(CONNECT_MS, signal);
    if (!this.server.up) throw new PushtaskError('CONNECT_FAILED', 'Cannot connect to fake://server: connection refused');
    this.server.logins += 1;
    this.#open = true;
    this.server.open.add(this);
  }

  async upload(request: UploadRequest): Promise<UploadResult> {
    if (!this.#open) throw new PushtaskError('CONNECTION_LOST', 'Not connected to fake://server (lost)');
    this.server.attempts.push({ remotePath: request.remotePath, at: this.server.clock.now() });
    if (this.server.rateLimitNext > 0) {
      this.server.rateLimitNext -= 1;
      throw new PushtaskError('RATE_LIMITED', 'fake://server is rate limiting', { retryAfterMs: this.server.retryAfterMs });
    }
    await this.#wait(UPLOAD_MS, request.signal);
    if (this.server.refused.has(request.remotePath)) throw new PushtaskError('UPLOAD_FAILED', `fake://server refused ${request.remotePath}`);
    this.server.delivered.push(request.remotePath);
    return { bytes: 3 };
  }

  async close(): Promise<void> {
    this.#open = false;
    this.server.open.delete(this);
  }

  die(): void {
    this.#open = false;
    this.server.open.delete(this);
    for (const fail of [...this.#pending]) fail(new PushtaskError('CONNECTION_LOST', 'Connection to fake://server lost (reset)'));
  }

  #wait(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const fail = (error: Error) => {
        cancel();
        this.#pending.delete(fail);
        reject(error);
      };
      const cancel = this.server.clock.setTimer(() => {
        this.#pending.delete(fail);
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => fail(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
      this.#pending.add(fail);
    });
  }
}

let nextId = 0;
function snapshot(name: string): Snapshot {
  const id = (nextId += 1).toString(16).padStart(20, '0');
  return {
    id,
    version: 1,
    kind: 'data',
    source: `/data/${name}`,
    remotePath: name,
    size: 3,
    mtimeMs: 0,
    queuedAt: 0,
    dataPath: `/spool/${id}.1.snap`,
    metaPath: `/spool/${id}.1.json`,
  };
}

const running: Uploader[] = [];
afterEach(async () => {
  for (const uploader of running.splice(0)) await uploader.stop({ graceful: false });
});

function setup(overrides: Partial<UploaderOptions> = {}) {
  const clock = new ManualClock();
  const server = new FakeServer(clock);
  const events: Array<{ name: string; payload: unknown }> = [];
  const uploader = new Uploader({
    createTransport: () => new FakeTransport(server),
    transfers: 4,
    spool: { remove: async () => undefined, recordRemoteTemp: async () => undefined },
    ledger: { recordDelivered: () => undefined, saveSoon: () => undefined, forget: () => undefined, file: '/spool/state.json' },
    status: { setQueueSource: () => undefined, setConnection: () => undefined, recordError: () => undefined, recordUpload: () => undefined, changed: () => undefined },
    retry: RETRY,
    operationTimeoutMs: 30_000,
    deadTimeMs: 180_000,
    logger: silentLogger(),
    emit: (name, payload) => events.push({ name, payload }),
    describeError: toErrorInfo,
    requestSnapshot: () => undefined,
    clock,
    ...overrides,
  });
  running.push(uploader);
  return { clock, server, uploader, events };
}

describe('uploader lanes (state machine)', () => {
  it('opens one connection (one login) for one file, also when warmUp ran first', async () => {
    const { clock, server, uploader } = setup();
    uploader.warmUp(); // a notify: connect while the snapshot is taken
    expect(uploader.state).toBe('connecting');
    await clock.advance(50);
    uploader.enqueue(snapshot('heartbeat.heartbeat'));
    await clock.until(() => server.delivered.length === 1);
    expect(server.logins).toBe(1);
    expect(server.connectAttempts).toBe(1);
    expect(uploader.state).toBe('connected');

    // Dead time closes it; the next single file opens exactly one connection again.
    await clock.advance(180_000);
    await uploader.checkDeadTime();
    expect(uploader.connected).toBe(false);
    uploader.enqueue(snapshot('small.csv'));
    await clock.until(() => server.delivered.length === 2);
    expect(server.logins).toBe(2);
  });

  it('opens more lanes only when more work is queued than the running lanes carry', async () => {
    const { clock, server, uploader } = setup();
    for (const name of ['a', 'b', 'c']) uploader.enqueue(snapshot(name));
    await clock.until(() => server.delivered.length === 3);
    // One lane connects first (only one tries while nothing is connected), then one per waiting file.
    expect(server.logins).toBeGreaterThan(1);
    expect(server.logins).toBeLessThanOrEqual(3);
  });

  it('replaces a connection lost mid-upload at once, without a retry wait', async () => {
    const { clock, server, uploader } = setup();
    uploader.enqueue(snapshot('warm'));
    await clock.until(() => server.delivered.length === 1);
    uploader.enqueue(snapshot('cut.csv'));
    await clock.advance(UPLOAD_MS / 2);
    expect(server.attempts.at(-1)?.remotePath).toBe('cut.csv');
    server.cutAll();
    const took = await clock.until(() => server.delivered.includes('cut.csv'));
    // One login and one upload: far below the 3 s quick retry wait.
    expect(took).toBeLessThanOrEqual(CONNECT_MS + UPLOAD_MS + 50);
    expect(server.logins).toBe(2);
  });

  it('a second loss before anything was delivered goes through the retry schedule', async () => {
    const { clock, server, uploader } = setup();
    uploader.enqueue(snapshot('warm'));
    await clock.until(() => server.delivered.length === 1);
    uploader.enqueue(snapshot('flaky.csv'));
    await clock.advance(UPLOAD_MS / 2);
    server.cutAll(); // replaced at once
    await clock.until(() => server.attempts.length === 3); // the new connection's attempt
    server.cutAll(); // lost again before delivering: now the schedule applies
    const lostAt = clock.now();
    await clock.until(() => server.delivered.includes('flaky.csv'));
    expect(clock.now() - lostAt).toBeGreaterThanOrEqual(RETRY.quickDelayMs);
    expect(uploader.state).toBe('connected');
  });

  it('follows the retry schedule while connects fail: quick tries, then a long wait', async () => {
    const { clock, server, uploader } = setup();
    server.up = false;
    uploader.enqueue(snapshot('a'));
    await clock.advance(CONNECT_MS + 10);
    expect(uploader.state).toBe('failed');
    await clock.advance(RETRY.quickDelayMs * 2 + CONNECT_MS * 2);
    expect(server.connectAttempts).toBe(3);
    // After quickTries failures: the long wait, still a single lane trying.
    await clock.advance(RETRY.longDelayMs - 1000);
    expect(server.connectAttempts).toBe(3);
    server.up = true;
    await clock.until(() => server.delivered.length === 1);
    expect(server.connectAttempts).toBe(4);
    expect(server.logins).toBe(1);
  });

  it('a 429 pauses every lane until Retry-After has passed', async () => {
    const { clock, server, uploader } = setup();
    uploader.enqueue(snapshot('warm'));
    await clock.until(() => server.delivered.length === 1);
    server.rateLimitNext = 1;
    server.retryAfterMs = 5000;
    for (const name of ['a', 'b', 'c']) uploader.enqueue(snapshot(name));
    await clock.until(() => server.attempts.some((attempt) => attempt.at > 0) && uploader.state === 'paused', 1000, 1);
    const pausedAt = clock.now();
    await clock.until(() => server.delivered.length === 4);
    // No request started during the pause, on any lane.
    const during = server.attempts.filter((attempt) => attempt.at > pausedAt && attempt.at < pausedAt + server.retryAfterMs - 200);
    expect(during).toEqual([]);
  });

  it('a failing file counts once in the backlog, also while its lane waits to retry', async () => {
    const { clock, server, uploader, events } = setup();
    server.refused.add('stuck.txt');
    uploader.enqueue(snapshot('stuck.txt'));
    await clock.until(() => events.some((event) => event.name === 'upload-failed'));
    expect(uploader.backlog().files).toBe(1);
    await clock.advance(RETRY.quickDelayMs / 2);
    expect(uploader.backlog().files).toBe(1);
    server.refused.clear();
    await clock.until(() => server.delivered.includes('stuck.txt'));
    expect(uploader.backlog().files).toBe(0);
  });

  it('closes connections after the dead time, not before', async () => {
    const { clock, server, uploader } = setup({ deadTimeMs: 60_000 });
    uploader.enqueue(snapshot('a'));
    await clock.until(() => server.delivered.length === 1);
    await clock.advance(59_000);
    await uploader.checkDeadTime();
    expect(uploader.connected).toBe(true);
    await clock.advance(2000);
    await uploader.checkDeadTime();
    expect(uploader.connected).toBe(false);
    expect(uploader.state).toBe('idle');
  });

  it('draining: a graceful stop delivers the queue, then stops', async () => {
    const { clock, server, uploader } = setup();
    for (const name of ['a', 'b']) uploader.enqueue(snapshot(name));
    const stopped = uploader.stop({ graceful: true });
    await clock.until(() => server.delivered.length === 2);
    await clock.advance(10);
    await stopped;
    expect(uploader.state).toBe('stopped');
  });
});
