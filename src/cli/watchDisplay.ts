/**
 * How `pushtask watch` shows its work. In a terminal (LiveDisplay): event lines scroll by, and
 * below them a live area — one line per transfer (bytes, rate) and the queue — redrawn in place
 * at most four times a second. Without a terminal (PlainDisplay: a service, a pipe, a log file):
 * plain lines only, never a control character, and a progress line only for long transfers.
 */
import type { ProgressEvent } from '../shared/ipc.js';
import type { AgentStatus } from '../subtask/status.js';
import { clockTime } from './format.js';
import { TransferTracker, formatQueue, formatTransfer } from './transfers.js';

export interface WatchDisplay {
  /** A line of text above the live area (or simply a line). */
  line(text: string): void;
  progress(event: ProgressEvent): void;
  /** A transfer ended (uploaded or failed). */
  done(file: string): void;
  /** Every transfer ended (disconnected, subtask gone). */
  clearTransfers(): void;
  /** Removes the live area; the display prints nothing more. */
  close(): void;
}

export interface DisplayOptions {
  write: (text: string) => void;
  /** The agent's status.json, for the queue (null when there is none yet). */
  readStatus: () => AgentStatus | null;
  /** Shown paths are relative to this folder. */
  base?: () => string | undefined;
  now?: () => number;
}

/** At most four redraws a second. */
export const REDRAW_EVERY_MS = 250;
const QUEUE_POLL_MS = 1000;

export class LiveDisplay implements WatchDisplay {
  readonly #o: DisplayOptions;
  readonly #columns: () => number;
  readonly #now: () => number;
  readonly #tracker = new TransferTracker();
  /** Lines of the live area on screen; the cursor sits at the end of its last line. */
  #drawn = 0;
  /** The live area's text as last drawn. */
  #shown = '';
  #lastDrawAt = -Infinity;
  #timer: NodeJS.Timeout | null = null;
  readonly #poll: NodeJS.Timeout;
  #closed = false;

  constructor(options: DisplayOptions & { columns: () => number }) {
    this.#o = options;
    this.#columns = options.columns;
    this.#now = options.now ?? Date.now;
    // The queue changes without events (snapshots queued): follow status.json.
    this.#poll = setInterval(() => this.#schedule(), QUEUE_POLL_MS);
    this.#poll.unref();
    this.#draw();
  }

  line(text: string): void {
    if (this.#closed) return;
    this.#o.write(`${this.#erase()}${text}\n${this.#show(this.#render())}`);
  }

  progress(event: ProgressEvent): void {
    this.#tracker.progress(event, this.#now());
    this.#schedule();
  }

  done(file: string): void {
    this.#tracker.done(file);
    this.#schedule();
  }

  clearTransfers(): void {
    this.#tracker.clear();
    this.#schedule();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#poll);
    if (this.#timer) clearTimeout(this.#timer);
    this.#o.write(this.#erase());
  }

  #schedule(): void {
    if (this.#closed || this.#timer) return;
    const wait = this.#lastDrawAt + REDRAW_EVERY_MS - this.#now();
    if (wait <= 0) {
      this.#draw();
      return;
    }
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#draw();
    }, wait);
    this.#timer.unref();
  }

  #draw(): void {
    if (this.#closed) return;
    this.#lastDrawAt = this.#now();
    const area = this.#render();
    if (this.#drawn > 0 && area === this.#shown) return; // unchanged: leave the screen alone
    this.#o.write(`${this.#erase()}${this.#show(area)}`);
  }

  /** The live area: one line per transfer, then the queue; no final newline. */
  #render(): string {
    const base = this.#o.base?.();
    const lines = [...this.#tracker.list.map((transfer) => formatTransfer(transfer, base)), formatQueue(this.#o.readStatus())];
    // A line wider than the terminal wraps, and the erase would miss its upper part.
    const width = Math.max(20, this.#columns() - 1);
    return lines.map((line) => (line.length > width ? `${line.slice(0, width - 1)}…` : line)).join('\n');
  }

  /** `area`, remembered as what is on screen (the cursor ends at its last line). */
  #show(area: string): string {
    this.#shown = area;
    this.#drawn = area.split('\n').length;
    return area;
  }

  /** Moves to the start of the live area, erasing it. */
  #erase(): string {
    if (this.#drawn === 0) return '';
    const text = `\r\x1b[K${'\x1b[1A\x1b[K'.repeat(this.#drawn - 1)}`;
    this.#drawn = 0;
    return text;
  }
}

export interface PlainDisplayOptions extends DisplayOptions {
  /** A transfer gets its first progress line once it has run this long. @default 2000 */
  firstAfterMs?: number;
  /** And then one every this long. @default 10000 */
  everyMs?: number;
}

export class PlainDisplay implements WatchDisplay {
  readonly #o: PlainDisplayOptions;
  readonly #now: () => number;
  readonly #tracker = new TransferTracker();
  readonly #printedAt = new Map<string, number>();
  #closed = false;

  constructor(options: PlainDisplayOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  line(text: string): void {
    if (!this.#closed) this.#o.write(`${text}\n`);
  }

  progress(event: ProgressEvent): void {
    const now = this.#now();
    const transfer = this.#tracker.progress(event, now);
    const printed = this.#printedAt.get(event.file);
    if (printed === undefined ? transfer.ms < (this.#o.firstAfterMs ?? 2000) : now < printed + (this.#o.everyMs ?? 10_000)) return;
    this.#printedAt.set(event.file, now);
    this.line(`${clockTime(now)} progress  ${formatTransfer(transfer, this.#o.base?.())}; ${formatQueue(this.#o.readStatus())}`);
  }

  done(file: string): void {
    this.#tracker.done(file);
    this.#printedAt.delete(file);
  }

  clearTransfers(): void {
    this.#tracker.clear();
    this.#printedAt.clear();
  }

  close(): void {
    this.#closed = true;
  }
}
