/**
 * The spool: snapshots waiting for upload. Each snapshot is a pair written in this order:
 * `<id>.<version>.json` (where it goes) and `<id>.<version>.snap` (the bytes, via temp + fsync +
 * rename). A pair is complete once the `.snap` exists; anything else found at start is debris of
 * a crash and removed. `id` is derived from the remote path, so a newer snapshot of the same file
 * supersedes an older one: latest content wins. Snapshots are deleted only after the transport
 * confirmed the upload.
 *
 * With `deferSyncMs` (the subtask's spool, on Linux) the fsync of the bytes waits: a snapshot
 * uploaded within that time is never fsynced, one still here then is. Until it is, its meta
 * carries `unsyncedBoot`, the kernel's boot id: bytes that were never fsynced are intact as long
 * as the machine has not restarted (a killed process loses nothing that reached the page cache),
 * so `recover()` trusts them in the same boot and drops them after a reboot, leaving the source
 * to the catch-up, as it already does for a snapshot whose meta (never fsynced) did not survive.
 */
import { createHash } from 'node:crypto';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { atomicCopy, isTempName, syncFile, tempSiblingName } from '../shared/atomicCopy.js';
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
  /** Set while the bytes are not fsynced: the boot they are valid in (see the module comment). */
  unsyncedBoot?: string;
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
/** Snapshots at least this big are freed in the background by remove(). */
const BACKGROUND_UNLINK_BYTES = 16 * 1024 * 1024;
/**
 * Emptied files kept for the next snapshots, per kind (bytes, meta), and the biggest bytes kept:
 * what they hold until reused is at most SPARE_FILES × SPARE_MAX_BYTES of disk.
 */
const SPARE_FILES = 16;
const SPARE_MAX_BYTES = 1024 * 1024;

export function snapshotId(remotePath: string): string {
  return createHash('sha256').update(remotePath).digest('hex').slice(0, 20);
}

export interface SpoolOptions {
  /** fsync a snapshot's bytes only once it has waited this long (Linux; see the module comment). */
  deferSyncMs?: number;
}

export class Spool {
  readonly dir: string;
  #lastVersion = 0;
  /** The boot id when syncs are deferred, else null (every snapshot is fsynced at once). */
  readonly #deferBoot: string | null;
  readonly #deferSyncMs: number;
  /** Snapshots whose bytes are not fsynced yet, by data path, with their timers. */
  readonly #unsynced = new Map<string, { snapshot: Snapshot; timer: NodeJS.Timeout; syncing?: Promise<void>; removed?: boolean }>();
  /** Data paths of snapshots with a `.remote-temps` record (see recordRemoteTemp). */
  readonly #remoteTempRecords = new Set<string>();
  /** Remote temporary names recorded by an earlier process, found by recover(). */
  #remoteTempsLeft: string[] = [];
  /**
   * Files of delivered snapshots, renamed to temporary names, for the next snapshots to write
   * into: creating a file costs more than the copy of a small one (on ext4 without a journal,
   * each creation steps over every inode freed in the last minutes), and deleting one feeds that
   * cost. Temporary names: recover() removes them like any crash debris.
   */
  readonly #spare = { data: [] as string[], meta: [] as string[] };

  constructor(dir: string, options: SpoolOptions = {}) {
    this.dir = dir;
    this.#deferSyncMs = options.deferSyncMs ?? 0;
    this.#deferBoot = this.#deferSyncMs > 0 ? bootId() : null;
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
    return this.#whole(request);
  }

  async #writeMeta(snapshot: Snapshot): Promise<void> {
    const { dataPath: _data, metaPath, ...meta } = snapshot;
    await replaceMeta(metaPath, meta);
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
      ...(this.#deferBoot && { unsyncedBoot: this.#deferBoot }),
    };
    try {
      // No fsync for the meta: after a power cut a snapshot without its meta is dropped at recovery,
      // and the catch-up at start re-snapshots the source, which is where the data still is.
      await this.#writeNewMeta(metaPath, meta);
      for (let attempt = 1; ; attempt += 1) {
        const spare = this.#spare.data.pop();
        await atomicCopy(request.source, dataPath, {
          mtime: new Date(before.mtimeMs),
          private: true,
          sync: !this.#deferBoot,
          ...(spare ? { tempName: path.basename(spare) } : {}),
        });
        const after = await statOrNull(request.source);
        if (!after) break; // deleted after we copied it: the copy is the last state it had
        const stable = after.size === before.size && after.mtimeMs === before.mtimeMs;
        before = after;
        if (stable || attempt >= MAX_COPY_ATTEMPTS) break;
      }
      // Keep the size/mtime of the state we really copied.
      const changed = before.size !== meta.size || before.mtimeMs !== meta.mtimeMs;
      meta.size = before.size;
      meta.mtimeMs = before.mtimeMs;
      // Append mode: the whole file is the base of the next delta.
      if (request.append) meta.tailHash = sha256(await readRange(dataPath, tailWindowStart(meta.size), TAIL_WINDOW_BYTES));
      if (changed || request.append) await replaceMeta(metaPath, meta);
    } catch (error) {
      // Nothing of a failed snapshot may stay: the uploader never hears of it, so it would sit in
      // the spool until the next start (a disk-full meta write leaves a torn meta, for one).
      await fs.rm(metaPath, { force: true });
      await fs.rm(dataPath, { force: true });
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new PushtaskError('UPLOAD_FAILED', `Snapshot of ${request.source} into ${this.dir} failed: ${errorMessage(error)}`, {
        cause: error,
      });
    }
    return this.#syncLater({ ...meta, dataPath, metaPath });
  }

  #syncLater(snapshot: Snapshot): Snapshot {
    if (snapshot.unsyncedBoot) {
      const timer = setTimeout(() => void this.#sync(snapshot.dataPath).catch(() => undefined), this.#deferSyncMs);
      // Never keeps a process alive; syncPending() at stop covers what is left.
      timer.unref();
      this.#unsynced.set(snapshot.dataPath, { snapshot, timer });
    }
    return snapshot;
  }

  /**
   * fsyncs the bytes, then rewrites the meta without `unsyncedBoot`. A failed fsync leaves the
   * snapshot as it was: still valid in this boot, dropped after a reboot.
   */
  #sync(dataPath: string): Promise<void> {
    const entry = this.#unsynced.get(dataPath);
    if (!entry) return Promise.resolve();
    clearTimeout(entry.timer);
    entry.syncing ??= (async () => {
      try {
        if (!(await syncFile(dataPath)) || entry.removed) return;
        const { dataPath: _data, metaPath, unsyncedBoot: _boot, ...meta } = entry.snapshot;
        await replaceMeta(metaPath, meta);
      } finally {
        if (this.#unsynced.get(dataPath) === entry) this.#unsynced.delete(dataPath);
      }
    })();
    return entry.syncing;
  }

  /** fsyncs every snapshot still waiting for it (at stop: a clean shutdown must not drop them). */
  async syncPending(): Promise<void> {
    await Promise.all([...this.#unsynced.keys()].map((dataPath) => this.#sync(dataPath).catch(() => undefined)));
  }

  /**
   * Deletes a snapshot: bytes first, so a crash in between leaves only a harmless meta file. A big
   * snapshot's bytes are renamed to a temp name (debris for recover()) and freed in the background:
   * freeing 1 GiB of blocks takes ~0.3 s here, which the upload's `uploaded` event waited for.
   */
  async remove(snapshot: Pick<Snapshot, 'dataPath' | 'metaPath'> & { size?: number }): Promise<void> {
    const unsynced = this.#unsynced.get(snapshot.dataPath);
    if (unsynced) {
      clearTimeout(unsynced.timer);
      unsynced.removed = true;
      this.#unsynced.delete(snapshot.dataPath);
      // An fsync under way would otherwise write the meta back after we deleted it.
      await unsynced.syncing?.catch(() => undefined);
    }
    if ((snapshot.size ?? 0) >= BACKGROUND_UNLINK_BYTES) {
      const trash = tempSiblingName(snapshot.dataPath);
      if (await renameIfPresent(snapshot.dataPath, trash)) void fs.unlink(trash).catch(() => undefined);
    } else if (snapshot.size === undefined || snapshot.size > SPARE_MAX_BYTES || !(await this.#keepSpare(this.#spare.data, snapshot.dataPath))) {
      await unlinkIfPresent(snapshot.dataPath);
    }
    if (!(await this.#keepSpare(this.#spare.meta, snapshot.metaPath))) await unlinkIfPresent(snapshot.metaPath);
    if (this.#remoteTempRecords.delete(snapshot.dataPath)) await unlinkIfPresent(remoteTempsPath(snapshot.dataPath));
  }

  /** Renames `file` to a spare (true), or false when enough are kept and it is to be deleted. */
  async #keepSpare(spares: string[], file: string): Promise<boolean> {
    if (spares.length >= SPARE_FILES) return false;
    const spare = tempSiblingName(file);
    if (await renameIfPresent(file, spare)) spares.push(spare);
    return true;
  }

  /**
   * The first meta of a snapshot: its `.snap` does not exist yet, so a torn meta is crash debris
   * that `recover()` removes. Written into a spare and renamed when there is one. No fsync (see
   * the comment at the call).
   */
  async #writeNewMeta(metaPath: string, meta: SnapshotMeta): Promise<void> {
    const spare = this.#spare.meta.pop();
    if (spare) {
      try {
        await fs.writeFile(spare, JSON.stringify(meta), { mode: 0o600 });
        await fs.rename(spare, metaPath);
        return;
      } catch {
        await fs.rm(spare, { force: true });
      }
    }
    await fs.writeFile(metaPath, JSON.stringify(meta), { mode: 0o600 });
  }

  /**
   * Remembers, beside the snapshot, the remote temporary name an upload of it is about to write:
   * if this process dies mid-upload, the next one removes that file from the server (the transport
   * itself only remembers names in memory). Best effort: a failure here must not stop the upload.
   */
  async recordRemoteTemp(snapshot: Pick<Snapshot, 'dataPath'>, remoteTemp: string): Promise<void> {
    try {
      await fs.appendFile(remoteTempsPath(snapshot.dataPath), `${JSON.stringify(remoteTemp)}\n`, { mode: 0o600 });
      this.#remoteTempRecords.add(snapshot.dataPath);
    } catch {
      // Disk full, say: the worst outcome is a stray temporary file on the server after a crash.
    }
  }

  /** The remote temporary names recover() found recorded by an earlier process (once). */
  takeRemoteTempsLeft(): string[] {
    const names = this.#remoteTempsLeft;
    this.#remoteTempsLeft = [];
    return names;
  }

  /**
   * The complete snapshots in the spool, newest version per id, oldest first. Removes crash
   * debris (temp files, metas without bytes, superseded versions), and collects the remote
   * temporary names recorded by the process before (takeRemoteTempsLeft).
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
      if (name.endsWith(REMOTE_TEMPS_SUFFIX)) {
        const text = await fs.readFile(path.join(this.dir, name), 'utf8').catch(() => '');
        // One JSON string per line (a name may hold a line break); a torn last line is skipped.
        for (const line of text.split('\n')) {
          try {
            const remoteTemp: unknown = JSON.parse(line);
            if (typeof remoteTemp === 'string') this.#remoteTempsLeft.push(remoteTemp);
          } catch {
            // empty or torn
          }
        }
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
      // Bytes never fsynced, and the machine restarted since: they may not have reached the disk.
      if (meta.unsyncedBoot !== undefined && meta.unsyncedBoot !== bootId()) {
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
    // Left unsynced by a process that stopped in this boot: fsync them in due course here.
    return [...newest.values()].sort((a, b) => a.version - b.version).map((snapshot) => this.#syncLater(snapshot));
  }
}

let currentBoot: string | null | undefined;

/** The kernel's boot id (Linux), changed by every restart; null where there is none. */
export function bootId(): string | null {
  if (currentBoot === undefined) {
    try {
      currentBoot = fsSync.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
    } catch {
      currentBoot = null;
    }
  }
  return currentBoot;
}

// The helpers below change the file system through the thread pool (see atomicCopy for why).

/** A meta whose `.snap` already exists is replaced atomically (temp name, rename), without fsync. */
async function replaceMeta(metaPath: string, meta: SnapshotMeta): Promise<void> {
  const temp = tempSiblingName(metaPath);
  try {
    await fs.writeFile(temp, JSON.stringify(meta), { mode: 0o600 });
    await fs.rename(temp, metaPath);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
}

/** Beside `<id>.<version>.snap`: the remote temporary names its uploads wrote (recordRemoteTemp). */
const REMOTE_TEMPS_SUFFIX = '.remote-temps';

function remoteTempsPath(dataPath: string): string {
  return dataPath.replace(/\.snap$/, REMOTE_TEMPS_SUFFIX);
}

/** One unlink: cheaper than `fs.rm({ force: true })`, which also lstat()s the path twice. */
async function unlinkIfPresent(file: string): Promise<void> {
  try {
    await fs.unlink(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

async function renameIfPresent(from: string, to: string): Promise<boolean> {
  try {
    await fs.rename(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    return false;
  }
}

/** Synchronous: a stat never waits for the journal, and is cheaper than a thread-pool round trip. */
async function statOrNull(file: string): Promise<{ size: number; mtimeMs: number } | null> {
  const stats = fsSync.statSync(file, { throwIfNoEntry: false });
  if (!stats) return null;
  return stats.isFile() ? { size: stats.size, mtimeMs: stats.mtimeMs } : null;
}
