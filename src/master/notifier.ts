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
      // First notify: the sidecar must appear with its final mtime, or the subtask would see two
      // touches (creation, then utimes) and upload twice.
      const temp = `${sidecar}.${process.pid}.tmp`;
      fs.closeSync(fs.openSync(temp, 'w'));
      fs.utimesSync(temp, seconds, seconds);
      fs.renameSync(temp, sidecar);
    }
  }
}
