/**
 * Each client's backlog over the monitor's lifetime, for the page's chart. Bounded: when a
 * client's series is full, every other point is dropped, so it always spans the whole lifetime at
 * a coarser step (a thousand clients cost a few MB at most).
 */
export const MAX_POINTS = 240;

export interface BacklogPoint {
  /** ms since epoch */
  t: number;
  files: number | null;
  bytes: number | null;
  online: boolean;
}

export class BacklogHistory {
  readonly #series = new Map<string, BacklogPoint[]>();
  readonly #maxPoints: number;

  constructor(maxPoints = MAX_POINTS) {
    this.#maxPoints = Math.max(4, maxPoints);
  }

  add(client: string, point: BacklogPoint): void {
    let series = this.#series.get(client);
    if (!series) this.#series.set(client, (series = []));
    series.push(point);
    if (series.length > this.#maxPoints) {
      // Keep the newest point and every other one before it.
      const halved = series.filter((_, index) => (series.length - 1 - index) % 2 === 0);
      this.#series.set(client, halved);
    }
  }

  /** Clients no longer in the fleet are forgotten. */
  retain(clients: ReadonlySet<string>): void {
    for (const client of this.#series.keys()) if (!clients.has(client)) this.#series.delete(client);
  }

  get(client: string): readonly BacklogPoint[] {
    return this.#series.get(client) ?? [];
  }
}
