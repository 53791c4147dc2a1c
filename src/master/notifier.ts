/**
 * The hot path: a notify is one small file-system touch of the data file's sidecar. The mtime is
 * set explicitly and strictly increases per sidecar, so two notifies in the same millisecond are
 * still two distinct touches for the subtask.
 */
import fs from 'node:fs';

export class SidecarToucher {
  readonly #lastMs = new Map<string, number>();

  /** Touches `sidecar` (creating it when missing). Throws only for file-system errors. */
  touch(sidecar: string, nowMs: number): void {
    const ms = Math.max(nowMs, (this.#lastMs.get(sidecar) ?? 0) + 1);
    this.#lastMs.set(sidecar, ms);
    const seconds = ms / 1000;
    try {
      fs.utimesSync(sidecar, seconds, seconds);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      fs.closeSync(fs.openSync(sidecar, 'a'));
      fs.utimesSync(sidecar, seconds, seconds);
    }
  }
}
