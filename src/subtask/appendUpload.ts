/**
 * Append mode on the wire (SPEC §7). The remote file's size, read before every append, is the
 * truth: after a cut connection, a killed subtask or a lost ledger save, the server holds some
 * prefix of what we sent, and only the bytes after it are sent — none lost, none doubled.
 * Before trusting a remote file we have not appended to on this connection, or one whose size is
 * not where we left it, the end of it is compared with our bytes; a remote file that is longer
 * than ours or ends differently is replaced whole (atomically).
 */
import fs from 'node:fs/promises';
import { sha256, readRange } from '../shared/fileRange.js';
import { PushtaskError } from '../shared/errors.js';
import { tailWindowStart, TAIL_WINDOW_BYTES, type Snapshot } from '../spool/spool.js';
import type { RemoteAppender } from '../transports/types.js';

export type AppendOutcome =
  /** `bytes` were appended (0: the server already held everything). */
  | { kind: 'appended'; bytes: number; remoteSizeBefore: number }
  /** The remote file cannot be continued: it must be replaced by the whole file. */
  | { kind: 'needs-whole'; reason: string }
  /** The snapshot in the spool does not hold the bytes its meta promises: take it again. */
  | { kind: 'bad-snapshot'; reason: string };

export interface AppendContext {
  appender: RemoteAppender;
  /** Remote paths whose end was checked on this connection (cleared on reconnect). */
  trusted: Set<string>;
  signal: AbortSignal;
}

/** The decision before any bytes move, from the remote size alone. Pure, for tests. */
export function planAppend(
  appendFrom: number,
  end: number,
  remoteSize: number | null,
  trusted: boolean,
): { kind: 'append'; from: number; verify: boolean } | { kind: 'needs-whole'; reason: string } {
  if (remoteSize === null) {
    return appendFrom === 0
      ? { kind: 'needs-whole', reason: 'it is not on the server yet' }
      : { kind: 'needs-whole', reason: `it is missing on the server, which should hold its first ${appendFrom} bytes` };
  }
  if (remoteSize < appendFrom) {
    return { kind: 'needs-whole', reason: `the server holds ${remoteSize} bytes of it, fewer than the ${appendFrom} delivered before` };
  }
  if (remoteSize > end) {
    return { kind: 'needs-whole', reason: `the server holds ${remoteSize} bytes of it, more than the ${end} bytes of the local file` };
  }
  return { kind: 'append', from: remoteSize, verify: remoteSize !== appendFrom || !trusted };
}

export async function appendSnapshot(snapshot: Snapshot, context: AppendContext): Promise<AppendOutcome> {
  const { appender, trusted, signal } = context;
  const appendFrom = snapshot.appendFrom ?? 0;
  const end = snapshot.size;
  const held = (await fs.stat(snapshot.dataPath)).size;
  if (held !== end - appendFrom) {
    return { kind: 'bad-snapshot', reason: `${snapshot.dataPath} holds ${held} bytes, not the ${end - appendFrom} of bytes ${appendFrom}–${end}` };
  }
  const remoteSize = await appender.size(snapshot.remotePath, signal);
  const plan = planAppend(appendFrom, end, remoteSize, trusted.has(snapshot.remotePath));
  if (plan.kind === 'needs-whole') return plan;
  if (plan.verify && !(await remoteEndMatches(snapshot, plan.from, context))) {
    return { kind: 'needs-whole', reason: `the last bytes of its ${plan.from} bytes on the server differ from the local file` };
  }
  trusted.add(snapshot.remotePath);
  if (plan.from === end) return { kind: 'appended', bytes: 0, remoteSizeBefore: plan.from };
  const written = await appender.write({
    localPath: snapshot.dataPath,
    localStart: plan.from - appendFrom,
    remotePath: snapshot.remotePath,
    remoteSize: plan.from,
    mtime: new Date(snapshot.mtimeMs),
    signal,
  });
  const after = typeof written === 'number' ? written : await appender.size(snapshot.remotePath, signal);
  if (after !== end) {
    trusted.delete(snapshot.remotePath);
    throw new PushtaskError(
      'UPLOAD_FAILED',
      `After appending to ${snapshot.remotePath} the server reports ${after ?? 'no file of'} bytes, not ${end}; the next try continues from what it holds`,
    );
  }
  return { kind: 'appended', bytes: end - plan.from, remoteSizeBefore: plan.from };
}

/**
 * Compares the remote bytes just before `remoteSize` with ours: the part we have in the snapshot
 * byte for byte, and the window before `appendFrom` (not in the snapshot) by its hash.
 */
async function remoteEndMatches(snapshot: Snapshot, remoteSize: number, { appender, signal }: AppendContext): Promise<boolean> {
  const appendFrom = snapshot.appendFrom ?? 0;
  if (remoteSize > appendFrom) {
    const start = Math.max(appendFrom, remoteSize - TAIL_WINDOW_BYTES);
    const ours = await readRange(snapshot.dataPath, start - appendFrom, remoteSize - start);
    const theirs = await appender.read(snapshot.remotePath, start, remoteSize - start, signal);
    if (!ours.equals(theirs)) return false;
    if (remoteSize - appendFrom >= TAIL_WINDOW_BYTES) return true;
  }
  if (appendFrom === 0) return true;
  const windowStart = tailWindowStart(appendFrom);
  const theirs = await appender.read(snapshot.remotePath, windowStart, appendFrom - windowStart, signal);
  return sha256(theirs) === snapshot.baseHash;
}
