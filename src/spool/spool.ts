/**
 * The spool: snapshots waiting for upload. Each snapshot is a pair written in this order:
 * `<id>.<version>.json` (where it goes) and `<id>.<version>.snap` (the bytes, via temp + fsync +
 * rename). A pair is complete once the `.snap` exists; anything else found at start is debris of
 * a crash and removed. `id` is derived from the remote path, so a newer snapshot of the same file
 * supersedes an older one: latest content wins. Snapshots are deleted only after the transport
 * confirmed the upload.
 */
import { createHash } from 'node:crypto';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { atomicCopy, isTempName, tempSiblingName } from '../shared/atomicCopy.js';
import { PushtaskError, errorMessage } from '../shared/errors.js';
import { safeRemotePath } from '../transports/remotePath.js';

export type SnapshotKind = 'data' | 'drop' | 'heartbeat' | 'residual';

export interface SnapshotMeta {
  id: string;
  version: number;
  kind: SnapshotKind;
  /** Absolute path of the file the snapshot was taken of. */
  source: string;
  /** Destination below the remote folder ('/'-separated). */
  remotePath: string;
  /** The source's size and mtime when the snapshot was taken. */
  size: number;
  mtimeMs: number;
  /** When the snapshot started: every notify before this moment is covered by it. */
  queuedAt: number;
}

export interface Snapshot extends SnapshotMeta {
  /** The snapshot's bytes in the spool. */
  dataPath: string;
  metaPath: string;
}

export interface SourceToSnapshot {
  kind: SnapshotKind;
  source: string;
  remotePath: string;
}

const MAX_COPY_ATTEMPTS = 5;

export function snapshotId(remotePath: string): string {
  return createHash('sha256').update(remotePath).digest('hex').slice(0, 20);
}

export class Spool {
  readonly dir: string;
  #lastVersion = 0;

  constructor(dir: string) {
    this.dir = dir;
  }

  async ensureDir(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  #nextVersion(): number {
    this.#lastVersion = Math.max(Date.now(), this.#lastVersion + 1);
    return this.#lastVersion;
  }

  #paths(id: string, version: number): { dataPath: string; metaPath: string } {
    const stem = path.join(this.dir, `${id}.${version}`);
    return { dataPath: `${stem}.snap`, metaPath: `${stem}.json` };
  }

  /**
   * Copies `source` into the spool. A file that changes while being copied is copied again, so
   * the snapshot is a state the file really had. Returns null when the source does not exist.
   */
  async snapshot(request: SourceToSnapshot): Promise<Snapshot | null> {
    const remotePath = safeRemotePath(request.remotePath);
    const id = snapshotId(remotePath);
    const version = this.#nextVersion();
    const { dataPath, metaPath } = this.#paths(id, version);
    // Taken before the first stat: a notify older than this is covered by this snapshot.
    const queuedAt = Date.now();
    let before = await statOrNull(request.source);
    if (!before) return null;
    const meta: SnapshotMeta = {
      id,
      version,
      kind: request.kind,
      source: request.source,
      remotePath,
      size: before.size,
      mtimeMs: before.mtimeMs,
      queuedAt,
    };
    // No fsync for the meta: after a power cut a snapshot without its meta is dropped at recovery,
    // and the catch-up at start re-snapshots the source, which is where the data still is.
    await writeNewMeta(metaPath, meta);
    try {
      for (let attempt = 1; ; attempt += 1) {
        await atomicCopy(request.source, dataPath, { mtime: new Date(before.mtimeMs), private: true });
        const after = await statOrNull(request.source);
        if (!after) break; // deleted after we copied it: the copy is the last state it had
        const stable = after.size === before.size && after.mtimeMs === before.mtimeMs;
        before = after;
        if (stable || attempt >= MAX_COPY_ATTEMPTS) break;
      }
    } catch (error) {
      await fs.rm(metaPath, { force: true });
      await fs.rm(dataPath, { force: true });
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new PushtaskError('UPLOAD_FAILED', `Snapshot of ${request.source} into ${this.dir} failed: ${errorMessage(error)}`, {
        cause: error,
      });
    }
    // Keep the size/mtime of the state we really copied.
    if (before.size !== meta.size || before.mtimeMs !== meta.mtimeMs) {
      meta.size = before.size;
      meta.mtimeMs = before.mtimeMs;
      await replaceMeta(metaPath, meta);
    }
    return { ...meta, dataPath, metaPath };
  }

  /** Deletes a snapshot: bytes first, so a crash in between leaves only a harmless meta file. */
  async remove(snapshot: Pick<Snapshot, 'dataPath' | 'metaPath'>): Promise<void> {
    await unlinkIfPresent(snapshot.dataPath);
    await unlinkIfPresent(snapshot.metaPath);
  }

  /**
   * The complete snapshots in the spool, newest version per id, oldest first. Removes crash
   * debris (temp files, metas without bytes, superseded versions).
   */
  async recover(): Promise<Snapshot[]> {
    await this.ensureDir();
    const names = await fs.readdir(this.dir);
    const present = new Set(names);
    const newest = new Map<string, Snapshot>();
    const doomed: string[] = [];
    for (const name of names) {
      // Our temp copies, and write-file-atomic's temp files (`<name>.json.<n>`) of a killed write
      // (earlier versions wrote metas with it).
      if (isTempName(name) || /\.json\.\d+$/.test(name)) {
        doomed.push(name);
        continue;
      }
      const match = /^([0-9a-f]{20})\.(\d+)\.json$/.exec(name);
      if (!match) continue;
      const [, id, versionText] = match as unknown as [string, string, string];
      const version = Number(versionText);
      this.#lastVersion = Math.max(this.#lastVersion, version);
      const { dataPath, metaPath } = this.#paths(id, version);
      if (!present.has(path.basename(dataPath))) {
        doomed.push(name);
        continue;
      }
      let meta: SnapshotMeta;
      try {
        meta = JSON.parse(await fs.readFile(metaPath, 'utf8')) as SnapshotMeta;
      } catch {
        doomed.push(name, path.basename(dataPath));
        continue;
      }
      const snapshot: Snapshot = { ...meta, id, version, dataPath, metaPath };
      const current = newest.get(id);
      if (!current || current.version < version) {
        if (current) doomed.push(path.basename(current.dataPath), path.basename(current.metaPath));
        newest.set(id, snapshot);
      } else {
        doomed.push(name, path.basename(dataPath));
      }
    }
    for (const name of names) {
      const orphan = /^([0-9a-f]{20})\.(\d+)\.snap$/.exec(name);
      if (orphan && !present.has(`${orphan[1]}.${orphan[2]}.json`)) doomed.push(name);
    }
    await Promise.all(doomed.map((name) => fs.rm(path.join(this.dir, name), { force: true })));
    return [...newest.values()].sort((a, b) => a.version - b.version);
  }
}

// The helpers below are synchronous: metadata calls of microseconds on the local spool, where a
// thread-pool round trip per call cost more than the call (see atomicCopy).

/**
 * The first meta of a snapshot is written in place: its `.snap` does not exist yet, so a torn
 * meta is crash debris that `recover()` removes. No fsync (see the comment at the call).
 */
async function writeNewMeta(metaPath: string, meta: SnapshotMeta): Promise<void> {
  fsSync.writeFileSync(metaPath, JSON.stringify(meta), { mode: 0o600 });
}

/** A meta whose `.snap` already exists is replaced atomically (temp name, rename), without fsync. */
async function replaceMeta(metaPath: string, meta: SnapshotMeta): Promise<void> {
  const temp = tempSiblingName(metaPath);
  try {
    fsSync.writeFileSync(temp, JSON.stringify(meta), { mode: 0o600 });
    fsSync.renameSync(temp, metaPath);
  } catch (error) {
    fsSync.rmSync(temp, { force: true });
    throw error;
  }
}

/** One unlink: cheaper than `fs.rm({ force: true })`, which also lstat()s the path twice. */
async function unlinkIfPresent(file: string): Promise<void> {
  try {
    fsSync.unlinkSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

async function statOrNull(file: string): Promise<{ size: number; mtimeMs: number } | null> {
  const stats = fsSync.statSync(file, { throwIfNoEntry: false });
  if (!stats) return null;
  return stats.isFile() ? { size: stats.size, mtimeMs: stats.mtimeMs } : null;
}
