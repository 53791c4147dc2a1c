import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Ledger, type DeliveredRecord } from '../../src/spool/ledger.js';
import { Spool, bootId, snapshotId, type SnapshotMeta } from '../../src/spool/spool.js';
import { isTempName } from '../../src/shared/atomicCopy.js';

let tmp: string;
let spoolDir: string;
let dataDir: string;

beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'pushtask-spool-test-'));
  spoolDir = path.join(tmp, 'spool');
  dataDir = path.join(tmp, 'data');
  await fs.mkdir(dataDir);
});

afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function writeData(name: string, content: string | Buffer): Promise<string> {
  const file = path.join(dataDir, name);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, content);
  return file;
}

async function newSpool(): Promise<Spool> {
  const spool = new Spool(spoolDir);
  await spool.ensureDir();
  return spool;
}

const listSpool = async () => (await fs.readdir(spoolDir)).sort();
/** The spool without the emptied files kept for reuse (temporary names, removed at recovery). */
const listSnapshots = async () => (await listSpool()).filter((name) => !isTempName(name));
const inode = async (file: string) => (await fs.stat(file)).ino;

/** Writes a complete snapshot pair by hand, with a chosen version. */
async function plantSnapshot(remotePath: string, version: number, content: string, meta: Partial<SnapshotMeta> = {}) {
  const id = snapshotId(remotePath);
  const full: SnapshotMeta = {
    id,
    version,
    kind: 'data',
    source: `/data/${remotePath}`,
    remotePath,
    size: Buffer.byteLength(content),
    mtimeMs: 1_700_000_000_000,
    queuedAt: version,
    ...meta,
  };
  await fs.writeFile(path.join(spoolDir, `${id}.${version}.json`), JSON.stringify(full));
  await fs.writeFile(path.join(spoolDir, `${id}.${version}.snap`), content);
  return { id, names: [`${id}.${version}.json`, `${id}.${version}.snap`] };
}

describe('snapshotId', () => {
  it('is 20 hex characters, stable per remote path, distinct across paths', () => {
    expect(snapshotId('a.csv')).toMatch(/^[0-9a-f]{20}$/);
    expect(snapshotId('a.csv')).toBe(snapshotId('a.csv'));
    expect(snapshotId('a.csv')).not.toBe(snapshotId('b.csv'));
    expect(snapshotId('sub/a.csv')).not.toBe(snapshotId('a.csv'));
  });
});

describe('Spool.snapshot', () => {
  it('creates the spool folder owner-only', async () => {
    await newSpool();
    const stats = await fs.stat(spoolDir);
    expect(stats.isDirectory()).toBe(true);
    expect(stats.mode & 0o777).toBe(0o700);
  });

  it('makes a byte-identical copy and a matching meta file', async () => {
    const content = Buffer.concat([Buffer.from('time,value\n1,2\n'), randomBytes(64 * 1024), Buffer.from([0, 255, 10, 13])]);
    const source = await writeData('test1.csv', content);
    const sourceStats = await fs.stat(source);
    const spool = await newSpool();
    const before = Date.now();

    const snapshot = await spool.snapshot({ kind: 'data', source, remotePath: 'test1.csv' });

    expect(snapshot).not.toBeNull();
    const snap = snapshot!;
    const id = snapshotId('test1.csv');
    expect(snap.id).toBe(id);
    expect(snap.kind).toBe('data');
    expect(snap.source).toBe(source);
    expect(snap.remotePath).toBe('test1.csv');
    expect(snap.size).toBe(content.length);
    expect(snap.mtimeMs).toBe(sourceStats.mtimeMs);
    expect(snap.queuedAt).toBeGreaterThanOrEqual(before);
    expect(snap.queuedAt).toBeLessThanOrEqual(Date.now());
    expect(snap.dataPath).toBe(path.join(spoolDir, `${id}.${snap.version}.snap`));
    expect(snap.metaPath).toBe(path.join(spoolDir, `${id}.${snap.version}.json`));

    expect(Buffer.compare(await fs.readFile(snap.dataPath), content)).toBe(0);
    const { dataPath: _d, metaPath: _m, ...meta } = snap;
    expect(JSON.parse(await fs.readFile(snap.metaPath, 'utf8'))).toEqual(meta);

    // the copy keeps the source's mtime (utimes takes float seconds: allow 1 ms of rounding) and is private
    const copyStats = await fs.stat(snap.dataPath);
    expect(Math.abs(copyStats.mtimeMs - sourceStats.mtimeMs)).toBeLessThanOrEqual(1);
    expect(copyStats.mode & 0o777).toBe(0o600);
    expect((await fs.stat(snap.metaPath)).mode & 0o777).toBe(0o600);

    // nothing else is left behind (no temp files)
    expect(await listSpool()).toEqual([path.basename(snap.metaPath), path.basename(snap.dataPath)].sort());
  });

  it('copies an empty file', async () => {
    const source = await writeData('empty.csv', '');
    const snapshot = await (await newSpool()).snapshot({ kind: 'data', source, remotePath: 'empty.csv' });
    expect(snapshot?.size).toBe(0);
    expect((await fs.readFile(snapshot!.dataPath)).length).toBe(0);
  });

  it('leaves the source untouched', async () => {
    const source = await writeData('keep.csv', 'abc\n');
    const before = await fs.stat(source);
    await (await newSpool()).snapshot({ kind: 'drop', source, remotePath: 'keep.csv' });
    const after = await fs.stat(source);
    expect(await fs.readFile(source, 'utf8')).toBe('abc\n');
    expect(after.mtimeMs).toBe(before.mtimeMs);
  });

  it('returns null for a missing source and leaves nothing in the spool', async () => {
    const spool = await newSpool();
    expect(await spool.snapshot({ kind: 'data', source: path.join(dataDir, 'nope.csv'), remotePath: 'nope.csv' })).toBeNull();
    expect(await listSpool()).toEqual([]);
  });

  it('returns null for a folder given as source', async () => {
    await fs.mkdir(path.join(dataDir, 'folder'));
    const spool = await newSpool();
    expect(await spool.snapshot({ kind: 'drop', source: path.join(dataDir, 'folder'), remotePath: 'folder' })).toBeNull();
    expect(await listSpool()).toEqual([]);
  });

  it('gives every snapshot a strictly higher version, even within one millisecond', async () => {
    const source = await writeData('a.csv', 'x');
    const spool = await newSpool();
    const versions: number[] = [];
    for (let i = 0; i < 5; i += 1) {
      versions.push((await spool.snapshot({ kind: 'data', source, remotePath: 'a.csv' }))!.version);
    }
    for (let i = 1; i < versions.length; i += 1) expect(versions[i]!).toBeGreaterThan(versions[i - 1]!);
  });

  it('keeps the remote path (with sub-folders) in the meta', async () => {
    const source = await writeData('sub/dir/x.bin', 'x');
    const snapshot = await (await newSpool()).snapshot({ kind: 'drop', source, remotePath: 'sub/dir/x.bin' });
    expect(snapshot!.remotePath).toBe('sub/dir/x.bin');
    expect(snapshot!.id).toBe(snapshotId('sub/dir/x.bin'));
  });
});

describe('Spool.remove', () => {
  it('deletes both the bytes and the meta', async () => {
    const source = await writeData('a.csv', 'data');
    const spool = await newSpool();
    const snapshot = (await spool.snapshot({ kind: 'data', source, remotePath: 'a.csv' }))!;
    const other = (await spool.snapshot({ kind: 'data', source, remotePath: 'b.csv' }))!;
    await spool.remove(snapshot);
    expect(await listSnapshots()).toEqual([path.basename(other.metaPath), path.basename(other.dataPath)].sort());
  });

  it('keeps the emptied files of a small snapshot for the next one to write into (no file created or deleted)', async () => {
    const spool = await newSpool();
    const first = (await spool.snapshot({ kind: 'drop', source: await writeData('a.bin', 'first'), remotePath: 'a.bin' }))!;
    const [dataInode, metaInode] = [await inode(first.dataPath), await inode(first.metaPath)];
    await spool.remove(first);
    expect(await listSnapshots()).toEqual([]);
    expect(await listSpool()).toHaveLength(2); // the two spares, under temporary names
    const second = (await spool.snapshot({ kind: 'drop', source: await writeData('b.bin', 'second, longer'), remotePath: 'b.bin' }))!;
    expect(await inode(second.dataPath)).toBe(dataInode);
    expect(await inode(second.metaPath)).toBe(metaInode);
    expect(await listSpool()).toEqual([path.basename(second.dataPath), path.basename(second.metaPath)].sort());
    expect(await fs.readFile(second.dataPath, 'utf8')).toBe('second, longer');
    expect((await fs.stat(second.dataPath)).mode & 0o777).toBe(0o600);
    expect((JSON.parse(await fs.readFile(second.metaPath, 'utf8')) as SnapshotMeta).remotePath).toBe('b.bin');
    // A new process finds the snapshot, and removes spares left behind like any crash debris.
    await spool.remove(second);
    const recovered = await (await newSpool()).recover();
    expect(recovered).toEqual([]);
    expect(await listSpool()).toEqual([]);
  });

  it('deletes the files of a snapshot of unknown size or above 1 MiB instead of keeping them', async () => {
    const spool = await newSpool();
    const big = (await spool.snapshot({ kind: 'drop', source: await writeData('big.bin', randomBytes(1024 * 1024 + 1)), remotePath: 'big.bin' }))!;
    await spool.remove(big);
    const unknown = (await spool.snapshot({ kind: 'drop', source: await writeData('small.bin', 'x'), remotePath: 'small.bin' }))!;
    await spool.remove({ dataPath: unknown.dataPath, metaPath: unknown.metaPath });
    // Only a meta is kept (tiny; the second snapshot reused the first one's); no bytes are.
    const left = await listSpool();
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/\.json\..*\.pushtask-tmp$/);
  });

  it('does not fail when the files are already gone', async () => {
    const spool = await newSpool();
    await expect(
      spool.remove({ dataPath: path.join(spoolDir, 'gone.snap'), metaPath: path.join(spoolDir, 'gone.json') }),
    ).resolves.toBeUndefined();
  });
});

describe('Spool remote temporary names', () => {
  it('a new process finds the names an upload recorded (any characters), once; a removed snapshot takes its record along', async () => {
    const source = await writeData('a.csv', 'data');
    const first = await newSpool();
    const killed = (await first.snapshot({ kind: 'data', source, remotePath: 'a.csv' }))!;
    const delivered = (await first.snapshot({ kind: 'data', source, remotePath: 'b.csv' }))!;
    await first.recordRemoteTemp(killed, '/in/.a.csv.1a.pushtask-tmp');
    await first.recordRemoteTemp(killed, '/in/.line\nbreak.2b.pushtask-tmp');
    await first.recordRemoteTemp(delivered, '/in/.b.csv.3c.pushtask-tmp');
    await first.remove(delivered);
    // A torn last line, as a crash during the append leaves it.
    await fs.appendFile(killed.dataPath.replace(/\.snap$/, '.remote-temps'), '"/in/.a.csv.4d.pushta');

    const second = await newSpool();
    expect(await second.recover()).toHaveLength(1);
    expect(second.takeRemoteTempsLeft()).toEqual(['/in/.a.csv.1a.pushtask-tmp', '/in/.line\nbreak.2b.pushtask-tmp']);
    expect(second.takeRemoteTempsLeft()).toEqual([]);
    expect(await listSpool()).toEqual([path.basename(killed.metaPath), path.basename(killed.dataPath)].sort());
  });
});

describe('Spool.recover', () => {
  it('returns an empty list for an empty (or missing) spool and creates it', async () => {
    const spool = new Spool(spoolDir);
    expect(await spool.recover()).toEqual([]);
    expect((await fs.stat(spoolDir)).isDirectory()).toBe(true);
  });

  it('finds snapshots taken by an earlier Spool instance, with their content', async () => {
    const source = await writeData('a.csv', 'first-run');
    const taken = (await (await newSpool()).snapshot({ kind: 'residual', source, remotePath: 'a.csv' }))!;
    const recovered = await new Spool(spoolDir).recover();
    expect(recovered).toEqual([taken]);
    expect(await fs.readFile(recovered[0]!.dataPath, 'utf8')).toBe('first-run');
  });

  it('keeps only the newest version per id and deletes the older ones', async () => {
    const source = await writeData('a.csv', 'v1');
    const spool = await newSpool();
    const v1 = (await spool.snapshot({ kind: 'data', source, remotePath: 'a.csv' }))!;
    await fs.writeFile(source, 'v2 - newer');
    const v2 = (await spool.snapshot({ kind: 'data', source, remotePath: 'a.csv' }))!;
    const b = (await spool.snapshot({ kind: 'data', source, remotePath: 'b.csv' }))!;

    const recovered = await new Spool(spoolDir).recover();

    expect(recovered.map((s) => [s.remotePath, s.version])).toEqual([
      ['a.csv', v2.version],
      ['b.csv', b.version],
    ]);
    expect(await fs.readFile(recovered[0]!.dataPath, 'utf8')).toBe('v2 - newer');
    const names = await listSpool();
    expect(names).not.toContain(path.basename(v1.dataPath));
    expect(names).not.toContain(path.basename(v1.metaPath));
    expect(names).toHaveLength(4);
  });

  it('keeps the newest version whatever order the names are listed in', async () => {
    await newSpool();
    await plantSnapshot('a.csv', 900, 'newest');
    await plantSnapshot('a.csv', 100, 'oldest');
    await plantSnapshot('a.csv', 20_000, 'newer still'); // more digits: compared as numbers
    await plantSnapshot('a.csv', 3000, 'middle');
    const recovered = await new Spool(spoolDir).recover();
    expect(recovered.map((s) => s.version)).toEqual([20_000]);
    expect(await fs.readFile(recovered[0]!.dataPath, 'utf8')).toBe('newer still');
    const id = snapshotId('a.csv');
    expect(await listSpool()).toEqual([`${id}.20000.json`, `${id}.20000.snap`]);
  });

  it('returns the oldest snapshot first', async () => {
    await newSpool();
    await plantSnapshot('late.csv', 3000, 'c');
    await plantSnapshot('early.csv', 1000, 'a');
    await plantSnapshot('middle.csv', 2000, 'b');
    const recovered = await new Spool(spoolDir).recover();
    expect(recovered.map((s) => s.remotePath)).toEqual(['early.csv', 'middle.csv', 'late.csv']);
    expect(recovered[0]).toMatchObject({
      id: snapshotId('early.csv'),
      version: 1000,
      kind: 'data',
      source: '/data/early.csv',
      size: 1,
      dataPath: path.join(spoolDir, `${snapshotId('early.csv')}.1000.snap`),
      metaPath: path.join(spoolDir, `${snapshotId('early.csv')}.1000.json`),
    });
  });

  it('removes crash debris and keeps unrelated files', async () => {
    await newSpool();
    const kept = await plantSnapshot('good.csv', 5000, 'good');
    const tempCopy = `.${snapshotId('x')}.6000.snap.0badc0de.pushtask-tmp`;
    await fs.writeFile(path.join(spoolDir, tempCopy), 'half a copy');
    await fs.writeFile(path.join(spoolDir, 'other.pushtask-tmp'), 'temp');
    // meta written, crash before the bytes
    await fs.writeFile(path.join(spoolDir, `${snapshotId('meta-only')}.7000.json`), '{"remotePath":"meta-only"}');
    // bytes without their meta
    await fs.writeFile(path.join(spoolDir, `${snapshotId('snap-only')}.8000.snap`), 'orphan');
    // a meta that is not JSON (torn write): both halves go
    await fs.writeFile(path.join(spoolDir, `${snapshotId('torn')}.9000.json`), '{"remo');
    await fs.writeFile(path.join(spoolDir, `${snapshotId('torn')}.9000.snap`), 'torn bytes');
    // the spool's neighbours must survive
    for (const name of ['state.json', 'status.json', 'README.txt']) await fs.writeFile(path.join(spoolDir, name), '{}');

    const recovered = await new Spool(spoolDir).recover();

    expect(recovered.map((s) => s.remotePath)).toEqual(['good.csv']);
    expect(await listSpool()).toEqual([...kept.names, 'README.txt', 'state.json', 'status.json'].sort());
  });

  it('is idempotent', async () => {
    await newSpool();
    await plantSnapshot('a.csv', 100, 'x');
    await plantSnapshot('a.csv', 200, 'y');
    const first = await new Spool(spoolDir).recover();
    const second = await new Spool(spoolDir).recover();
    expect(second).toEqual(first);
  });

  it('makes later snapshots newer than every recovered one', async () => {
    await newSpool();
    const future = Date.now() + 10_000_000;
    await plantSnapshot('a.csv', future, 'from a clock that ran ahead');
    const spool = new Spool(spoolDir);
    await spool.recover();
    const source = await writeData('a.csv', 'fresh');
    const snapshot = (await spool.snapshot({ kind: 'data', source, remotePath: 'a.csv' }))!;
    expect(snapshot.version).toBeGreaterThan(future);
    // and so the fresh one wins the next recovery
    const recovered = await new Spool(spoolDir).recover();
    expect(recovered.map((s) => s.version)).toEqual([snapshot.version]);
    expect(await fs.readFile(recovered[0]!.dataPath, 'utf8')).toBe('fresh');
  });

  it('does not return snapshots that were removed', async () => {
    const source = await writeData('a.csv', 'x');
    const spool = await newSpool();
    const snapshot = (await spool.snapshot({ kind: 'data', source, remotePath: 'a.csv' }))!;
    await spool.remove(snapshot);
    expect(await new Spool(spoolDir).recover()).toEqual([]);
  });
});

describe.runIf(bootId() !== null)('Spool with deferred fsync', () => {
  async function deferredSpool(deferSyncMs = 60_000): Promise<Spool> {
    const spool = new Spool(spoolDir, { deferSyncMs });
    await spool.ensureDir();
    return spool;
  }
  const readMeta = async (metaPath: string) => JSON.parse(await fs.readFile(metaPath, 'utf8')) as SnapshotMeta;

  it('marks a fresh snapshot with the boot id, and syncPending() clears the mark', async () => {
    const spool = await deferredSpool();
    const taken = (await spool.snapshot({ kind: 'data', source: await writeData('a.csv', 'abc'), remotePath: 'a.csv' }))!;
    expect((await readMeta(taken.metaPath)).unsyncedBoot).toBe(bootId());
    await spool.syncPending();
    const meta = await readMeta(taken.metaPath);
    expect(meta.unsyncedBoot).toBeUndefined();
    expect(meta).toMatchObject({ remotePath: 'a.csv', size: 3 });
    expect(await fs.readFile(taken.dataPath, 'utf8')).toBe('abc');
  });

  it('fsyncs a snapshot that waited deferSyncMs by itself', async () => {
    const spool = await deferredSpool(30);
    const taken = (await spool.snapshot({ kind: 'data', source: await writeData('a.csv', 'abc'), remotePath: 'a.csv' }))!;
    for (let i = 0; i < 100 && (await readMeta(taken.metaPath)).unsyncedBoot; i += 1) await new Promise((r) => setTimeout(r, 20));
    expect((await readMeta(taken.metaPath)).unsyncedBoot).toBeUndefined();
  });

  it('never writes a meta back for a snapshot removed before its fsync', async () => {
    const spool = await deferredSpool(10);
    const taken = (await spool.snapshot({ kind: 'data', source: await writeData('a.csv', 'abc'), remotePath: 'a.csv' }))!;
    await spool.remove(taken);
    await new Promise((r) => setTimeout(r, 60));
    await spool.syncPending();
    expect(await listSnapshots()).toEqual([]);
  });

  it('recovers unsynced snapshots of this boot and drops those of an earlier boot', async () => {
    const spool = await newSpool();
    const kept = await plantSnapshot('this-boot.csv', 1, 'x', { unsyncedBoot: bootId()! });
    const dropped = await plantSnapshot('other-boot.csv', 2, 'y', { unsyncedBoot: 'an-earlier-boot' });
    const synced = await plantSnapshot('synced.csv', 3, 'z');
    const recovered = await spool.recover();
    expect(recovered.map((s) => s.remotePath)).toEqual(['this-boot.csv', 'synced.csv']);
    expect(await listSpool()).toEqual([...kept.names, ...synced.names].sort());
    expect(await listSpool()).not.toContain(dropped.names[0]);
    // This spool does not defer: the recovered unsynced snapshot is fsynced (and its mark cleared) at once.
    await spool.syncPending();
    expect((await readMeta(path.join(spoolDir, kept.names[0]!))).unsyncedBoot).toBeUndefined();
  });
});

describe('Ledger', () => {
  let file: string;
  beforeEach(() => {
    file = path.join(tmp, 'state.json');
  });

  const record = (size: number, mtimeMs: number, extra: Partial<DeliveredRecord> = {}): DeliveredRecord => ({
    size,
    mtimeMs,
    remotePath: 'a.csv',
    snapshotAt: 1_700_000_000_500,
    deliveredAt: 1_700_000_001_000,
    ...extra,
  });

  it('starts empty when the file is missing', () => {
    const ledger = new Ledger(file).load();
    expect(ledger.get('/data/a.csv')).toBeUndefined();
    expect(ledger.isDelivered('/data/a.csv', 0, 0)).toBe(false);
  });

  it('starts empty when the file is not valid JSON', async () => {
    await fs.writeFile(file, '{"version":1,"deliv');
    const ledger = new Ledger(file).load();
    expect(ledger.get('/data/a.csv')).toBeUndefined();
  });

  it('starts empty when the file has no delivered map', async () => {
    await fs.writeFile(file, '{"version":1}');
    expect(new Ledger(file).load().get('x')).toBeUndefined();
  });

  it('round-trips records through save and load', async () => {
    const ledger = new Ledger(file).load();
    ledger.recordDelivered('/data/a.csv', record(10, 1000));
    ledger.recordDelivered('/data/b.csv', record(20, 2000, { remotePath: 'b.csv' }));
    await ledger.save();

    const reloaded = new Ledger(file).load();
    expect(reloaded.get('/data/a.csv')).toEqual(record(10, 1000));
    expect(reloaded.get('/data/b.csv')).toEqual(record(20, 2000, { remotePath: 'b.csv' }));
    expect(JSON.parse(await fs.readFile(file, 'utf8'))).toEqual({
      version: 1,
      delivered: { '/data/a.csv': record(10, 1000), '/data/b.csv': record(20, 2000, { remotePath: 'b.csv' }) },
    });
  });

  it('isDelivered needs both size and mtime to match', () => {
    const ledger = new Ledger(file).load();
    ledger.recordDelivered('/data/a.csv', record(10, 1000));
    expect(ledger.isDelivered('/data/a.csv', 10, 1000)).toBe(true);
    expect(ledger.isDelivered('/data/a.csv', 11, 1000)).toBe(false);
    expect(ledger.isDelivered('/data/a.csv', 10, 1001)).toBe(false);
    expect(ledger.isDelivered('/data/other.csv', 10, 1000)).toBe(false);
  });

  it('a newer record replaces the older one', () => {
    const ledger = new Ledger(file).load();
    ledger.recordDelivered('/data/a.csv', record(10, 1000));
    ledger.recordDelivered('/data/a.csv', record(30, 3000));
    expect(ledger.isDelivered('/data/a.csv', 10, 1000)).toBe(false);
    expect(ledger.isDelivered('/data/a.csv', 30, 3000)).toBe(true);
  });

  it('forget removes a record, and the removal is saved', async () => {
    const ledger = new Ledger(file).load();
    ledger.recordDelivered('/data/a.csv', record(10, 1000));
    ledger.recordDelivered('/data/b.csv', record(20, 2000));
    await ledger.save();
    ledger.forget('/data/a.csv');
    await ledger.save();
    const reloaded = new Ledger(file).load();
    expect(reloaded.get('/data/a.csv')).toBeUndefined();
    expect(reloaded.get('/data/b.csv')).toEqual(record(20, 2000));
  });

  it('does not write when nothing changed', async () => {
    const ledger = new Ledger(file).load();
    await ledger.save();
    await expect(fs.access(file)).rejects.toMatchObject({ code: 'ENOENT' });
    ledger.forget('/data/never-recorded.csv');
    await ledger.save();
    await expect(fs.access(file)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('saves atomically: valid JSON, private mode, no temp files left', async () => {
    const ledger = new Ledger(file).load();
    for (let i = 0; i < 5; i += 1) {
      ledger.recordDelivered(`/data/${i}.csv`, record(i, i * 10));
      await ledger.save();
      const parsed = JSON.parse(await fs.readFile(file, 'utf8')) as { delivered: Record<string, unknown> };
      expect(Object.keys(parsed.delivered)).toHaveLength(i + 1);
    }
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    expect((await fs.readdir(tmp)).sort()).toEqual(['data', 'state.json']);
  });

  it('concurrent save() calls do not throw and the last state wins', async () => {
    const ledger = new Ledger(file).load();
    const saves: Promise<void>[] = [];
    for (let i = 0; i < 50; i += 1) {
      ledger.recordDelivered(`/data/${i}.csv`, record(i, i));
      saves.push(ledger.save());
      if (i % 10 === 0) ledger.forget(`/data/${i}.csv`);
    }
    await expect(Promise.all(saves)).resolves.toHaveLength(50);

    const onDisk = JSON.parse(await fs.readFile(file, 'utf8')) as { version: number; delivered: Record<string, DeliveredRecord> };
    expect(onDisk.version).toBe(1);
    expect(Object.keys(onDisk.delivered)).toHaveLength(45);
    expect(onDisk.delivered['/data/49.csv']).toEqual(record(49, 49));
    expect(onDisk.delivered['/data/40.csv']).toBeUndefined();
    expect((await fs.readdir(tmp)).sort()).toEqual(['data', 'state.json']);
  });

  it('a failed save is retried by the next save()', async () => {
    const nested = path.join(tmp, 'not-yet', 'state.json');
    const ledger = new Ledger(nested).load();
    ledger.recordDelivered('/data/a.csv', record(1, 1));
    await expect(ledger.save()).rejects.toMatchObject({ code: 'ENOENT' });
    await fs.mkdir(path.dirname(nested));
    await ledger.save();
    expect(new Ledger(nested).load().isDelivered('/data/a.csv', 1, 1)).toBe(true);
  });

  it('changes made while a save is in flight are written by a later save', async () => {
    const ledger = new Ledger(file).load();
    ledger.recordDelivered('/data/a.csv', record(1, 1));
    const first = ledger.save();
    ledger.recordDelivered('/data/b.csv', record(2, 2));
    const second = ledger.save();
    await Promise.all([first, second]);
    const reloaded = new Ledger(file).load();
    expect(reloaded.isDelivered('/data/a.csv', 1, 1)).toBe(true);
    expect(reloaded.isDelivered('/data/b.csv', 2, 2)).toBe(true);
  });
});
