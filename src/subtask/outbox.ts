/**
 * Drop folders as an outbox (`afterUpload: 'delete' | { moveTo }`): a file leaves its drop folder
 * only once the ledger says its current content was delivered. The file is first renamed away
 * (atomically) and then checked: a writer that replaced the file under its name meanwhile (write
 * to a temporary name, rename into place) cannot have its new content deleted, because the
 * rename took the old inode with it; and content that changed after its snapshot goes back.
 *
 * A crash between the rename and the unlink leaves `.<name>.pushtask-outbox` beside the file; the
 * next start finishes (the ledger still says delivered) or undoes (it does not) the job. A crash
 * after a move but before its sidecar followed leaves a sidecar without a file, which the next
 * start removes (DropFolderWatcher).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { AfterUpload } from '../config/resolve.js';
import { moveToFreeName } from '../shared/moveNoClobber.js';
import { sidecarOf } from '../shared/sidecar.js';

const SUFFIX = '.pushtask-outbox';

/** `.<name>.pushtask-outbox` beside the file: a dot file, which drop folders ignore. */
export function outboxTempOf(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}${SUFFIX}`);
}

/** The drop-folder file an outbox temporary belongs to, or null for any other name. */
export function fileOfOutboxTemp(temp: string): string | null {
  const name = path.basename(temp);
  if (!name.startsWith('.') || !name.endsWith(SUFFIX) || name.length <= SUFFIX.length + 1) return null;
  return path.join(path.dirname(temp), name.slice(1, -SUFFIX.length));
}

export type OutboxOutcome =
  | { kind: 'deleted' }
  | { kind: 'moved'; to: string }
  /** Its content is not the delivered one (changed since the snapshot): it stays, to be sent again. */
  | { kind: 'changed'; keptAs: string }
  /** Not there any more (someone else took it). */
  | { kind: 'gone' };

export interface ClearOptions {
  afterUpload: Exclude<AfterUpload, { kind: 'keep' }>;
  /** The drop folder: `moveTo` keeps the file's path relative to it. */
  dropDir: string;
  /** True when the ledger says exactly this state was delivered. */
  isDelivered: (stats: fs.Stats) => boolean;
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}

/** Deletes or moves a delivered drop-folder file and its sidecar. */
export async function clearDelivered(file: string, options: ClearOptions): Promise<OutboxOutcome> {
  const temp = outboxTempOf(file);
  try {
    await fs.promises.rename(file, temp);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return { kind: 'gone' };
    throw error;
  }
  return finish(file, temp, options);
}

/** The second half of clearDelivered; also what the next start does with a leftover temporary. */
export async function finish(file: string, temp: string, options: ClearOptions): Promise<OutboxOutcome> {
  const stats = await fs.promises.lstat(temp);
  if (!stats.isFile() || !options.isDelivered(stats)) {
    // Back under its own name (or the first free `name_n.ext` if a new file took it meanwhile).
    const keptAs = await moveToFreeName(temp, path.dirname(file), path.basename(file), stats);
    return keptAs === null ? { kind: 'gone' } : { kind: 'changed', keptAs };
  }
  const sidecar = sidecarOf(file);
  if (options.afterUpload.kind === 'delete') {
    // Sidecar first: a crash in between leaves the temporary, which the next start deletes.
    await fs.promises.rm(sidecar, { force: true });
    await fs.promises.unlink(temp);
    return { kind: 'deleted' };
  }
  const relative = path.relative(options.dropDir, file);
  const to = await moveToFreeName(temp, path.join(options.afterUpload.dir, path.dirname(relative)), path.basename(file), stats);
  if (to === null) return { kind: 'gone' };
  try {
    await fs.promises.rename(sidecar, sidecarOf(to));
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error;
  }
  return { kind: 'moved', to };
}
