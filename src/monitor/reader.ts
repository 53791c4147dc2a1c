/**
 * Reads a fleet from the remote folder: per cycle one listing of the folder (the `.heartbeat`
 * files) and one of its `.pushtask` folder (the status files), then the files that changed since
 * the last cycle (cached by name, size and mtime), a bounded number at a time over a few
 * connections kept between cycles. A client whose status file is missing or unreadable still
 * gets its online/offline state.
 */
import { setMaxListeners } from 'node:events';
import type { ResolvedConfig } from '../config/resolve.js';
import { withTimeout } from '../shared/abort.js';
import { PushtaskError, errorMessage, toErrorInfo } from '../shared/errors.js';
import { Slots } from '../shared/limit.js';
import { createLogger, silentLogger } from '../shared/logger.js';
import { collectSecrets, scrubSecrets } from '../shared/secrets.js';
import { HEALTH_DIR, HEALTH_MAX_BYTES, parseHealth, type HealthDocument } from '../health/document.js';
import { loadTransport, type TransportFactory } from '../transports/index.js';
import type { RemoteEntry, Transport } from '../transports/types.js';
import { HEARTBEAT_MAX_BYTES, assess, isHeartbeatEntry, type ClientReport } from './heartbeats.js';

/** Connections kept open (FTP runs one command at a time per connection; SFTP servers one process each). */
export const DEFAULT_CONNECTIONS = 4;
/** Reads in flight on each connection. */
export const READS_PER_CONNECTION = 8;

export interface FleetRead {
  target: string;
  clients: { report: ClientReport; status: { document: HealthDocument } | { problem: string } | null }[];
  /** Files read (not served from the cache) in this cycle. */
  reads: number;
  ms: number;
}

interface Lane {
  transport: Transport;
  connected: boolean;
  slots: Slots;
}

export class FleetReader {
  readonly #lanes: Lane[];
  readonly #timeoutMs: number;
  readonly #secrets: string[];
  readonly #cache = new Map<string, { key: string; text: string }>();
  #next = 0;

  private constructor(makeTransport: TransportFactory, connections: number, timeoutMs: number, secrets: string[]) {
    this.#lanes = Array.from({ length: connections }, () => ({ transport: makeTransport(), connected: false, slots: new Slots(READS_PER_CONNECTION) }));
    this.#timeoutMs = timeoutMs;
    this.#secrets = secrets;
  }

  static async open(config: ResolvedConfig, { debug = false, connections = DEFAULT_CONNECTIONS } = {}): Promise<FleetReader> {
    const secrets = collectSecrets(config);
    const logger = debug ? createLogger({ name: 'cli', level: 'debug', console: true, secrets }) : silentLogger();
    const makeTransport = await loadTransport(config.transport, { logger, stateDir: config.spoolDir });
    const probe = makeTransport();
    if (!probe.list || !probe.read) {
      throw new PushtaskError('REMOTE_READ_FAILED', `The ${config.transport.type} transport cannot list remote folders`);
    }
    await probe.close();
    return new FleetReader(makeTransport, Math.max(1, connections), config.operationTimeoutMs, secrets);
  }

  /** Where the fleet is read from; never contains a secret. */
  get target(): string {
    return this.#lanes[0]!.transport.description;
  }

  async read(parent: AbortSignal, now: () => number = Date.now): Promise<FleetRead> {
    const started = performance.now();
    // One listener on the caller's signal; the many reads in flight listen to this cycle's own.
    const cycle = new AbortController();
    setMaxListeners(this.#lanes.length * READS_PER_CONNECTION + 16, cycle.signal);
    const onAbort = () => cycle.abort(parent.reason);
    parent.addEventListener('abort', onAbort, { once: true });
    if (parent.aborted) onAbort();
    const signal = cycle.signal;
    const first = this.#lanes[0]!;
    try {
      await this.#connect(first, signal);
      // The other connections open while the folder is listed; one that fails is left out this cycle.
      const extra = Promise.all(this.#lanes.slice(1).map((lane) => this.#connect(lane, signal).catch(() => undefined)));
      const [entries, statusEntries] = await Promise.all([
        this.#step(signal, `Listing ${this.target}`, (s) => first.transport.list!('', s)),
        // No status folder (no client writes one yet): every client is heartbeat-only.
        this.#step(signal, `Listing ${HEALTH_DIR} in ${this.target}`, (s) => first.transport.list!(HEALTH_DIR, s)).catch(() => [] as RemoteEntry[]),
      ]);
      await extra;
      const statusByName = new Map(statusEntries.filter((entry) => entry.kind === 'file').map((entry) => [entry.name, entry]));
      const heartbeats = entries.filter(isHeartbeatEntry).sort((a, b) => a.name.localeCompare(b.name));
      let reads = 0;
      let readFailed = false;
      const seen = new Set<string>();
      const load = async (remotePath: string, entry: RemoteEntry, maxBytes: number): Promise<{ text: string } | { problem: string }> => {
        seen.add(remotePath);
        const key = `${entry.size}:${entry.mtime.getTime()}`;
        const cached = this.#cache.get(remotePath);
        if (cached?.key === key) return { text: cached.text };
        try {
          reads += 1;
          const data = await this.#onSomeLane((lane) => this.#step(signal, `Reading ${remotePath}`, (s) => lane.transport.read!(remotePath, maxBytes, s)));
          const text = data.toString('utf8');
          this.#cache.set(remotePath, { key, text });
          return { text };
        } catch (error) {
          readFailed = true;
          return { problem: this.#scrub(errorMessage(error)) };
        }
      };
      const clients = await Promise.all(
        heartbeats.map(async (entry) => {
          const client = entry.name.slice(0, -'.heartbeat'.length);
          const statusEntry = statusByName.get(`${client}.json`);
          const [content, statusText] = await Promise.all([
            load(entry.name, entry, HEARTBEAT_MAX_BYTES),
            statusEntry ? load(`${HEALTH_DIR}/${statusEntry.name}`, statusEntry, HEALTH_MAX_BYTES) : null,
          ]);
          const report = assess(entry, content, now());
          const status = statusText === null ? null : 'problem' in statusText ? { problem: `cannot read the status file: ${statusText.problem}` } : parseHealth(statusText.text);
          return { report, status };
        }),
      );
      // Forget what is gone, so a fleet that changes does not grow the cache forever.
      for (const name of this.#cache.keys()) if (!seen.has(name)) this.#cache.delete(name);
      // A connection may be what failed: the next cycle starts with fresh ones.
      if (readFailed) await this.#disconnect();
      return { target: this.target, clients, reads, ms: performance.now() - started };
    } catch (error) {
      await this.#disconnect();
      const info = toErrorInfo(error);
      throw new PushtaskError('REMOTE_READ_FAILED', this.#scrub(info.message), { cause: error });
    } finally {
      parent.removeEventListener('abort', onAbort);
    }
  }

  async #connect(lane: Lane, signal: AbortSignal): Promise<void> {
    if (lane.connected) return;
    try {
      await this.#step(signal, `Connecting to ${this.target}`, (s) => lane.transport.connect(s));
      lane.connected = true;
    } catch (error) {
      await lane.transport.close();
      throw error;
    }
  }

  /** Runs a read on the next connected lane, round robin, within that lane's bound. */
  #onSomeLane<T>(operation: (lane: Lane) => Promise<T>): Promise<T> {
    const connected = this.#lanes.filter((lane) => lane.connected);
    const lane = connected[this.#next++ % connected.length] ?? this.#lanes[0]!;
    return lane.slots.run(() => operation(lane));
  }

  #step<T>(signal: AbortSignal, what: string, operation: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return withTimeout(operation, this.#timeoutMs, signal, what);
  }

  #scrub(text: string): string {
    return scrubSecrets(text, this.#secrets);
  }

  async #disconnect(): Promise<void> {
    await Promise.all(
      this.#lanes.map(async (lane) => {
        lane.connected = false;
        await lane.transport.close();
      }),
    );
  }

  async close(): Promise<void> {
    await this.#disconnect();
  }
}
