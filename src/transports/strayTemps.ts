/**
 * Temporary files of uploads whose connection died before they could be removed. A transport
 * notes them and removes them over its next connection, so a flaky link does not leave one stray
 * `.pushtask-tmp` per cut on the server for months. Each gets one attempt: a server that refuses
 * deletes (upload-only accounts) must not make the list grow for ever. What a killed process
 * noted is lost with it (documented in docs/RELIABILITY.md).
 */
import { isTempName } from '../shared/atomicCopy.js';
import { errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';

/** Noted at most; beyond this a stray stays (a link that fails this often has other problems). */
const MAX_NOTED = 1000;
/** Removed per connection at most, so a new connection is not held up for long. */
const MAX_PER_CONNECTION = 20;

export class StrayTemps {
  readonly #paths = new Set<string>();

  /** Ignores anything that is not one of our temporary names: only those may ever be deleted. */
  note(remotePath: string): void {
    if (this.#paths.size < MAX_NOTED && isTempName(remotePath) && /(^|[\\/])\.[^\\/]*$/.test(remotePath)) this.#paths.add(remotePath);
  }

  get size(): number {
    return this.#paths.size;
  }

  /** Tries `remove` once for each noted path (up to a limit); a failure is logged, never thrown. */
  async removeWith(remove: (remotePath: string) => Promise<void>, logger: Logger, where: string): Promise<void> {
    for (const remotePath of [...this.#paths].slice(0, MAX_PER_CONNECTION)) {
      this.#paths.delete(remotePath);
      try {
        await remove(remotePath);
        logger.debug(`Removed ${remotePath} on ${where}, the temporary file of an upload cut off earlier`);
      } catch (error) {
        logger.debug(`Could not remove ${remotePath} on ${where} (the temporary file of an upload cut off earlier): ${errorMessage(error)}`);
      }
    }
  }
}
