/**
 * Residual data: at start, data left from earlier runs that was never delivered is copied into
 * the spool so the subtask uploads it first: files in the data folder with the watched files'
 * extensions. Unlike pysubtask, a file the ledger says was delivered exactly as it is now is
 * skipped (it would only be sent again). Append-mode files are left to the subtask, which sends
 * only what the server lacks (a residual copy would be the whole file).
 *
 * Drop-folder files need no copy here: the subtask's first scan of each drop folder, before it
 * reports ready, queues every file the ledger has not seen delivered as it is now. Copying them
 * here as well only delayed the subtask's start (8–12 s for 1,000 files, one after another).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ResolvedConfig } from '../config/resolve.js';
import type { Ledger } from '../spool/ledger.js';
import type { Spool, SnapshotKind } from '../spool/spool.js';
import { forEachLimited } from '../shared/limit.js';
import { isIgnoredName } from '../subtask/dropFolders.js';

export interface ResidualCandidate {
  source: string;
  remotePath: string;
}

export function findResiduals(config: ResolvedConfig): ResidualCandidate[] {
  const found = new Map<string, ResidualCandidate>();
  const extensions = new Set(
    config.watch.filter((entry) => entry.kind === 'file').map((entry) => path.extname(entry.path)).filter(Boolean),
  );
  const dataDirs = new Set(config.watch.filter((entry) => entry.kind === 'file').map((entry) => path.dirname(entry.path)));
  const appending = new Set(config.watch.filter((entry) => entry.kind === 'file' && entry.mode === 'append').map((entry) => entry.path));
  for (const dir of dataDirs) {
    for (const dirent of readDir(dir)) {
      const source = path.join(dir, dirent.name);
      if (!dirent.isFile() || isIgnoredName(dirent.name) || !extensions.has(path.extname(dirent.name)) || appending.has(source)) continue;
      found.set(source, { source, remotePath: dirent.name });
    }
  }
  return [...found.values()];
}

function readDir(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

/** Residuals snapshotted at once: their fsyncs share the file system's journal commits. */
const PRECOPY_CONCURRENCY = 8;

/**
 * Snapshots every residual not already delivered as it is; returns the files queued. A residual
 * that cannot be copied is reported and skipped (it stays where it is, for the next start); a full
 * spool ends the pre-copy: start() must not fail because the disk is full. So does `signal`.
 */
export async function precopyResiduals(
  config: ResolvedConfig,
  spool: Spool,
  ledger: Ledger,
  onError: (source: string, error: unknown) => void,
  signal?: AbortSignal,
): Promise<string[]> {
  const queued: string[] = [];
  const kind: SnapshotKind = 'residual';
  let spoolFull = false;
  await forEachLimited(findResiduals(config), PRECOPY_CONCURRENCY, async (candidate) => {
    // stop() during start(): the residuals not copied yet stay where they are, for the next start.
    if (spoolFull || signal?.aborted) return;
    try {
      const stats = fs.statSync(candidate.source, { throwIfNoEntry: false });
      if (!stats?.isFile() || ledger.isDelivered(candidate.source, stats.size, stats.mtimeMs)) return;
      if (await spool.snapshot({ kind, ...candidate })) queued.push(candidate.source);
    } catch (error) {
      onError(candidate.source, error);
      if (/ENOSPC/.test(String((error as Error)?.message))) spoolFull = true;
    }
  });
  return queued;
}
