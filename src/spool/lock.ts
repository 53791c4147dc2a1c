/**
 * One agent per spool, across processes: a lock directory inside the spool, refreshed while held,
 * considered stale 10 s after its holder stopped refreshing it (a killed agent).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { PushtaskError } from '../shared/errors.js';

export const LOCK_STALE_MS = 10_000;

export async function lockSpool(spoolDir: string, onCompromised: (error: Error) => void): Promise<() => Promise<void>> {
  await fs.mkdir(spoolDir, { recursive: true, mode: 0o700 });
  const lockfilePath = path.join(spoolDir, 'agent.lock');
  try {
    return await lockfile.lock(spoolDir, {
      lockfilePath,
      stale: LOCK_STALE_MS,
      update: LOCK_STALE_MS / 2,
      realpath: false,
      onCompromised,
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOCKED') {
      throw new PushtaskError(
        'SPOOL_LOCKED',
        `Another pushtask agent is already using the spool ${spoolDir} (lock ${lockfilePath}). ` +
          `Stop it first, or give this agent its own spoolDir. A lock left by a killed agent expires ` +
          `${LOCK_STALE_MS / 1000} s after it died.`,
        { cause: error },
      );
    }
    throw error;
  }
}
