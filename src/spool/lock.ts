/**
 * One agent per spool, across processes: a lock directory inside the spool, refreshed while held,
 * considered stale 10 s after its holder stopped refreshing it. Beside it, `agent.lock.owner.json`
 * names the holder (pid, its subtask's pid, host name): a lock whose holder on this machine is dead
 * — a host app that crashed and is restarted at once — is taken over without the 10 s wait, once
 * its orphaned subtask has gone too (it stops by itself when its master disappears).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import writeFileAtomic from 'write-file-atomic';
import { PushtaskError } from '../shared/errors.js';
import { isAlive } from '../shared/processes.js';

export const LOCK_STALE_MS = 10_000;
/** How long a new agent waits for the subtask of a dead holder to exit. */
const ORPHAN_WAIT_MS = 5000;

interface LockOwner {
  pid: number;
  subtaskPid: number | null;
  hostname: string;
}

export interface SpoolLock {
  /** Records the current subtask's pid, so a successor knows whom to wait for. */
  noteSubtask(pid: number | null): void;
  release(): Promise<void>;
}

export async function lockSpool(spoolDir: string, onCompromised: (error: Error) => void): Promise<SpoolLock> {
  fs.mkdirSync(spoolDir, { recursive: true, mode: 0o700 });
  const lockfilePath = path.join(spoolDir, 'agent.lock');
  const ownerFile = `${lockfilePath}.owner.json`;
  const acquire = () => lockfile.lock(spoolDir, { lockfilePath, stale: LOCK_STALE_MS, update: LOCK_STALE_MS / 2, realpath: false, onCompromised });
  let unlock: () => Promise<void>;
  try {
    unlock = await acquire();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw error;
    const orphan = await takeOverFromDeadOwner(lockfilePath, ownerFile);
    if (orphan === 'taken-over') {
      unlock = await acquire().catch((again: unknown) => {
        throw lockedError(spoolDir, lockfilePath, again);
      });
    } else {
      throw lockedError(spoolDir, lockfilePath, error, orphan);
    }
  }
  const owner: LockOwner = { pid: process.pid, subtaskPid: null, hostname: os.hostname() };
  // A failed write (disk full) only costs a successor the 10 s wait.
  const writeOwner = () => {
    try {
      writeFileAtomic.sync(ownerFile, JSON.stringify(owner), { mode: 0o600 });
    } catch {
      fs.rmSync(ownerFile, { force: true });
    }
  };
  writeOwner();
  return {
    noteSubtask(pid) {
      owner.subtaskPid = pid;
      writeOwner();
    },
    async release() {
      fs.rmSync(ownerFile, { force: true });
      await unlock();
    },
  };
}

/**
 * Removes the lock of a holder that died on this machine, once its subtask is gone. Returns
 * 'taken-over', or why not (for the error message).
 */
async function takeOverFromDeadOwner(lockfilePath: string, ownerFile: string): Promise<'taken-over' | string | undefined> {
  const owner = readOwner(ownerFile);
  if (!owner || owner.hostname !== os.hostname() || isAlive(owner.pid)) return undefined;
  if (owner.subtaskPid !== null) {
    const deadline = Date.now() + ORPHAN_WAIT_MS;
    while (isAlive(owner.subtaskPid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    if (isAlive(owner.subtaskPid)) return `its holder (pid ${owner.pid}) died, but its subtask (pid ${owner.subtaskPid}) still runs`;
  }
  // Moved aside first: if another new agent took the lock meanwhile, it is put back untouched.
  const aside = `${lockfilePath}.dead-${randomBytes(4).toString('hex')}`;
  try {
    fs.renameSync(lockfilePath, aside);
  } catch {
    return undefined;
  }
  const stillDead = readOwner(ownerFile);
  if (stillDead && stillDead.pid !== owner.pid) {
    try {
      fs.renameSync(aside, lockfilePath);
    } catch {
      // It has a new lock already; ours goes.
    }
    return undefined;
  }
  fs.rmSync(aside, { recursive: true, force: true });
  fs.rmSync(ownerFile, { force: true });
  return 'taken-over';
}

function readOwner(file: string): LockOwner | null {
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LockOwner>;
    return typeof parsed.pid === 'number' && typeof parsed.hostname === 'string'
      ? { pid: parsed.pid, subtaskPid: typeof parsed.subtaskPid === 'number' ? parsed.subtaskPid : null, hostname: parsed.hostname }
      : null;
  } catch {
    return null;
  }
}


function lockedError(spoolDir: string, lockfilePath: string, cause: unknown, why?: string): PushtaskError {
  return new PushtaskError(
    'SPOOL_LOCKED',
    `Another pushtask agent is already using the spool ${spoolDir} (lock ${lockfilePath}${why ? `: ${why}` : ''}). ` +
      `Stop it first, or give this agent its own spoolDir. A lock left by a killed agent on another machine ` +
      `(a shared spool folder) expires ${LOCK_STALE_MS / 1000} s after it died.`,
    { cause },
  );
}
