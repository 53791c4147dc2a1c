/**
 * The monitor's loop for `--watch` and `--serve`: a cycle reads the fleet, judges each client and
 * records its backlog; the latest result is what the table, the page, `/api/clients` and
 * `/metrics` show. A failed cycle keeps the previous clients and says why.
 */
import { sleep } from '../shared/abort.js';
import { errorMessage } from '../shared/errors.js';
import { clientView, summarize, worstFirst, type ClientView, type FleetSummary, type Thresholds } from './fleet.js';
import { BacklogHistory } from './history.js';
import type { FleetRead } from './reader.js';

export interface FleetSnapshot {
  /** When the cycle ended (ISO), or null before the first one. */
  checkedAt: string | null;
  target: string;
  /** How long the last cycle took (ms). */
  cycleMs: number | null;
  /** Files read (not cached) in the last cycle. */
  reads: number;
  summary: FleetSummary;
  /** Worst first. */
  clients: ClientView[];
  /** Why the last cycle failed (the clients are then the previous cycle's). */
  error: string | null;
  intervalSec: number;
}

export interface FleetSource {
  readonly target: string;
  read(signal: AbortSignal): Promise<FleetRead>;
}

export class FleetMonitor {
  readonly history = new BacklogHistory();
  readonly #source: FleetSource;
  readonly #thresholds: Thresholds;
  readonly #intervalSec: number;
  readonly #now: () => number;
  #snapshot: FleetSnapshot;
  #cycles = 0;
  #failures = 0;

  constructor(source: FleetSource, thresholds: Thresholds, intervalSec: number, now: () => number = Date.now) {
    this.#source = source;
    this.#thresholds = thresholds;
    this.#intervalSec = intervalSec;
    this.#now = now;
    this.#snapshot = { checkedAt: null, target: source.target, cycleMs: null, reads: 0, summary: summarize([]), clients: [], error: null, intervalSec };
  }

  get snapshot(): FleetSnapshot {
    return this.#snapshot;
  }

  get cycles(): number {
    return this.#cycles;
  }

  get failures(): number {
    return this.#failures;
  }

  /** One cycle; never throws (a failure is in the snapshot's `error`). */
  async cycle(signal: AbortSignal): Promise<FleetSnapshot> {
    const started = performance.now();
    try {
      const read = await this.#source.read(signal);
      const now = this.#now();
      const clients = read.clients.map(({ report, status }) => clientView(report, status, now, this.#thresholds)).sort(worstFirst);
      for (const client of clients) {
        this.history.add(client.client, { t: now, files: client.backlogFiles, bytes: client.backlogBytes, online: client.state === 'online' });
      }
      this.history.retain(new Set(clients.map((client) => client.client)));
      this.#snapshot = {
        checkedAt: new Date(now).toISOString(),
        target: read.target,
        cycleMs: Math.round(performance.now() - started),
        reads: read.reads,
        summary: summarize(clients),
        clients,
        error: null,
        intervalSec: this.#intervalSec,
      };
    } catch (error) {
      this.#failures += 1;
      this.#snapshot = { ...this.#snapshot, error: errorMessage(error), cycleMs: Math.round(performance.now() - started) };
    }
    this.#cycles += 1;
    return this.#snapshot;
  }

  /** Cycles every interval until `signal` aborts; `onCycle` sees each result. */
  async run(signal: AbortSignal, onCycle: (snapshot: FleetSnapshot) => void = () => undefined): Promise<void> {
    while (!signal.aborted) {
      const snapshot = await this.cycle(signal);
      if (signal.aborted) break;
      onCycle(snapshot);
      await sleep(this.#intervalSec * 1000, signal).catch(() => undefined);
    }
  }
}
