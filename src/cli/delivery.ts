/**
 * Knows, from the master's events, whether every notified file has been delivered at its
 * notified size, and which files burst mode still holds back. The demo waits on it before a
 * graceful stop, because the subtask's graceful stop finishes only the upload in flight.
 */
import fs from 'node:fs';
import type { TaskMaster } from '../master/TaskMaster.js';
import type { NotifyEvent } from '../master/events.js';
import type { UploadedEvent } from '../shared/ipc.js';

export class DeliveryTracker {
  /** File → its size when it was last passed on; removed once an upload at least that big came. */
  readonly #wanted = new Map<string, number>();
  /** File → when burst mode flushes the data it holds. */
  readonly #held = new Map<string, number>();
  readonly #master: TaskMaster;

  readonly #onNotify = (event: NotifyEvent) => {
    if (!event.passed) {
      if (event.pendingDueAt !== null) this.#held.set(event.file, event.pendingDueAt);
      return;
    }
    this.#held.delete(event.file);
    const size = fs.statSync(event.file, { throwIfNoEntry: false })?.size ?? 0;
    this.#wanted.set(event.file, Math.max(size, this.#wanted.get(event.file) ?? 0));
  };

  readonly #onUploaded = (event: UploadedEvent) => {
    // A whole-file upload of at least the notified size includes everything that was notified.
    const wanted = this.#wanted.get(event.file);
    if (wanted !== undefined && event.bytes >= wanted) this.#wanted.delete(event.file);
  };

  constructor(master: TaskMaster) {
    this.#master = master;
    master.on('notify', this.#onNotify);
    master.on('uploaded', this.#onUploaded);
  }

  /** Files whose data burst mode holds back, with the time it will be flushed. */
  get held(): ReadonlyMap<string, number> {
    return this.#held;
  }

  /** How many notified files still wait for their upload. */
  get outstanding(): number {
    return this.#wanted.size;
  }

  /** Resolves true once nothing is outstanding, false after `timeoutMs`. */
  async settled(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.#wanted.size > 0) {
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return true;
  }

  dispose(): void {
    this.#master.off('notify', this.#onNotify);
    this.#master.off('uploaded', this.#onUploaded);
  }
}
