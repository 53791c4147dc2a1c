/**
 * The spool: snapshots waiting for upload. Each snapshot is a pair written in this order:
 * `<id>.<version>.json` (where it goes) and `<id>.<version>.snap` (the bytes, via temp + fsync +
 * rename). A pair is complete once the `.snap` exists; anything else found at start is debris of
 * a crash and removed. `id` is derived from the remote path, so a newer snapshot of the same file
 * supersedes an older one: latest content wins. Snapshots are deleted only after the transport
 * confirmed the upload.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { atomicCopy, isTempName, tempSiblingName } from '../shared/atomicCopy.js';
import { copyRange, readRange, sha256 } from '../shared/fileRange.js';
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
  /**
   * Append mode, a delta: the snapshot holds the source's bytes [appendFrom, size), to be
   * appended remotely. Absent: the snapshot is the whole file, which replaces the remote one.
   */
  appendFrom?: number;
  /** Append mode, a delta: hash of the source's bytes just before `appendFrom` (see tailWindow). */
  baseHash?: string;
  /** Append mode: hash of the source's bytes just before `size`, the next delta's `baseHash`. */
  tailHash?: string;
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
  /**
   * Append mode: the source's bytes before `offset` were delivered, and `tailHash` is the hash of
   * their tail. When the file still starts with them, only the bytes after `offset` are taken;
   * when it shrank or its tail changed (rotated, rewritten), the whole file is. Offset 0 with no
   * delivery known: the whole file as a delta from 0, so the uploader can resume what the
   * server already holds.
   */
  append?: AppendBase;
}

export interface AppendBase {
  offset: number;
  tailHash: string;
}

/** How many bytes before an offset are hashed to recognise a file that was rewritten. */
export const TAIL_WINDOW_BYTES = 4096;

/** Where the tail window before `offset` starts. */
export function tailWindowStart(offset: number): number {
  return Math.max(0, offset - TAIL_WINDOW_BYTES);
}

/** The base of a file nothing of which was delivered yet. */
export const EMPTY_BASE: AppendBase = { offset: 0, tailHash: sha256(Buffer.alloc(0)) };

/** Bytes the upload of `snapshot` sends. */
export function payloadBytes(snapshot: Pick<SnapshotMeta, 'size' | 'appendFrom'>): number {
  return snapshot.size - (snapshot.appendFrom ?? 0);
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
    if (request.append) {
      const delta = await this.#delta(request, request.append);
      if (delta !== 'rewritten') return delta;
    }
    const snapshot = await this.#whole(request);
    if (snapshot && request.append) {
      snapshot.tailHash = sha256(await readRange(snapshot.dataPath, tailWindowStart(snapshot.size), TAIL_WINDOW_BYTES));
      await this.#writeMeta(snapshot);
    }
    return snapshot;
  }

  async #writeMeta(snapshot: Snapshot): Promise<void> {
    const { dataPath: _data, metaPath, ...meta } = snapshot;
    await writeFileAtomic(metaPath, JSON.stringify(meta), { mode: 0o600, fsync: false });
  }

  /**
   * Append mode: the bytes of `source` after `base.offset`, if the file still holds what was
   * delivered (its tail window hashes the same). Null when the source is missing or has nothing
   * new; 'rewritten' when it shrank or changed, so the whole file must go.
   */
  async #delta(request: SourceToSnapshot, base: AppendBase): Promise<Snapshot | null | 'rewritten'> {
    const remotePath = safeRemotePath(request.remotePath);
    const id = snapshotId(remotePath);
    const queuedAt = Date.now();
    const windowStart = tailWindowStart(base.offset);
    for (let attempt = 1; attempt <= MAX_COPY_ATTEMPTS; attempt += 1) {
      const before = await statOrNull(request.source);
      if (!before) return null;
      if (before.size < base.offset) return 'rewritten';
      const window = await readRange(request.source, windowStart, base.offset - windowStart);
      if (sha256(window) !== base.tailHash) return 'rewritten';
      if (before.size === base.offset) return null;
      const version = this.#nextVersion();
      const { dataPath, metaPath } = this.#paths(id, version);
      const snapshot: Snapshot = {
        id,
        version,
        kind: request.kind,
        source: request.source,
        remotePath,
        size: before.size,
        mtimeMs: before.mtimeMs,
        queuedAt,
        appendFrom: base.offset,
        baseHash: base.tailHash,
        dataPath,
        metaPath,
      };
      const temp = tempSiblingName(dataPath);
      try {
        const copied = await copyRange(request.source, base.offset, before.size, temp);
        // The window again: a file rewritten during the copy must not pass as grown.
        const after = await statOrNull(request.source);
        const intact =
          copied === before.size - base.offset &&
          after !== null &&
          after.size >= before.size &&
          sha256(await readRange(request.source, windowStart, base.offset - windowStart)) === base.tailHash;
        if (!intact) {
          await fs.rm(temp, { force: true });
          continue;
        }
        // The new tail window: what is left of the old window, then the end of the copied bytes.
        const newWindowStart = tailWindowStart(before.size);
        const fromCopy = await readRange(temp, Math.max(0, newWindowStart - base.offset), TAIL_WINDOW_BYTES);
        const fromWindow = window.subarray(Math.max(0, newWindowStart - windowStart));
        snapshot.tailHash = sha256(newWindowStart < base.offset ? Buffer.concat([fromWindow, fromCopy]) : fromCopy);
        await this.#writeMeta(snapshot);
        await fs.rename(temp, dataPath);
        return snapshot;
      } catch (error) {
        await fs.rm(temp, { force: true });
        await fs.rm(metaPath, { force: true });
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw new PushtaskError('UPLOAD_FAILED', `Snapshot of the new bytes of ${request.source} into ${this.dir} failed: ${errorMessage(error)}`, {
          cause: error,
        });
      }
    }
    return 'rewritten';
  }

  async #whole(request: SourceToSnapshot): Promise<Snapshot | null> {
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
    await writeFileAtomic(metaPath, JSON.stringify(meta), { mode: 0o600, fsync: false });
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
      await writeFileAtomic(metaPath, JSON.stringify(meta), { mode: 0o600, fsync: false });
    }
    return { ...meta, dataPath, metaPath };
  }

  /** Deletes a snapshot: bytes first, so a crash in between leaves only a harmless meta file. */
  async remove(snapshot: Pick<Snapshot, 'dataPath' | 'metaPath'>): Promise<void> {
    await fs.rm(snapshot.dataPath, { force: true });
    await fs.rm(snapshot.metaPath, { force: true });
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
      // Our temp copies, and write-file-atomic's temp files (`<name>.json.<n>`) of a killed write.
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

async function statOrNull(file: string): Promise<{ size: number; mtimeMs: number } | null> {
  try {
    const stats = await fs.stat(file);
    return stats.isFile() ? { size: stats.size, mtimeMs: stats.mtimeMs } : null;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}
