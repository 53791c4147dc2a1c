/**
 * Drop-folder files are copied into the spool only a few uploads ahead of the lanes, not all at
 * once when they are found. A drop file stays where it is until it is uploaded (and is found
 * again by the next start if the agent stops first), so copying it early protects nothing; doing
 * it late means a backlog of 10 GB dropped at once does not need 10 GB more in the spool, and the
 * spool's emptied files can be reused for the next snapshots (spool.ts) instead of creating and
 * deleting two files per upload. Files a lane will need soon are already copied: `limit`
 * snapshots wait in the uploader's queue while the lanes upload theirs.
 *
 * Pure bookkeeping: the agent calls admit() before a drop-folder snapshot and done() once it is
 * queued; the uploader's queue changes call wake().
 */

/** A drop-folder file that is ready to go but not copied yet: what status.json lists for it. */
export interface WaitingFile {
  source: string;
  remotePath: string;
  size: number;
  /** When it was handed over for upload. */
  queuedAt: number;
  kind: 'drop';
}

interface Waiter {
  file: WaitingFile;
  resolve: (admitted: boolean) => void;
}

export class SnapshotLookahead {
  #limit: number;
  readonly #queued: () => number;
  /** Admitted, and their snapshots not queued yet. */
  #admitted = 0;
  /** In arrival order: files go out in the order they were found. */
  readonly #waiting = new Set<Waiter>();
  #closed = false;

  /**
   * @param limit snapshots that may wait in the uploader's queue (taken and being taken)
   * @param queued how many snapshots wait in the uploader's queue now
   */
  constructor(limit: number, queued: () => number) {
    this.#limit = Math.max(1, limit);
    this.#queued = queued;
  }

  /**
   * Resolves true once `file` may be copied into the spool, false when the agent stops first
   * (the file then stays in its drop folder for the next start).
   */
  admit(file: WaitingFile): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    if (this.#waiting.size === 0 && this.#hasRoom()) {
      this.#admitted += 1;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      this.#waiting.add({ file, resolve });
      this.wake();
    });
  }

  /** An admitted file's snapshot was queued, or came to nothing (gone, failed). */
  done(): void {
    this.#admitted = Math.max(0, this.#admitted - 1);
    this.wake();
  }

  /** The uploader's queue changed: admits waiting files while there is room. */
  wake(): void {
    for (const waiter of this.#waiting) {
      if (this.#closed || !this.#hasRoom()) return;
      this.#waiting.delete(waiter);
      this.#admitted += 1;
      waiter.resolve(true);
    }
  }

  /**
   * A graceful stop: every file found is snapshotted now, as before the lookahead, and the
   * uploader delivers them while uploads succeed (the rest waits in the spool).
   */
  admitAll(): void {
    this.#limit = Infinity;
    this.wake();
  }

  /** A hard stop: every waiting file stays in its drop folder. */
  close(): void {
    this.#closed = true;
    for (const waiter of this.#waiting) waiter.resolve(false);
    this.#waiting.clear();
  }

  /** Files waiting for their snapshot, in the order they will be taken. */
  *waiting(): Generator<WaitingFile> {
    for (const waiter of this.#waiting) yield waiter.file;
  }

  #hasRoom(): boolean {
    return this.#queued() + this.#admitted < this.#limit;
  }
}
