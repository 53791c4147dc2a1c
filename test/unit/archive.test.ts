import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { archiveExpiredFiles, archiveTarget, withCollisionSuffix } from '../../src/master/archive.js';

const DAY = 86_400_000;
// Fixed local dates, so the expected YYYYMM/DD folders do not depend on the machine's zone.
const OLD = new Date(2026, 0, 5, 12, 0, 0); // → archive/202601/05
const NOW = new Date(2026, 0, 20, 12, 0, 0).getTime();

let dir: string;

beforeEach(async () => {
  dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'pushtask-archive-'));
});

afterEach(async () => {
  vi.restoreAllMocks();
  await fs.promises.rm(dir, { recursive: true, force: true });
});

async function writeFile(name: string, content: string, mtime: Date): Promise<string> {
  const p = path.join(dir, name);
  await fs.promises.mkdir(path.dirname(p), { recursive: true });
  await fs.promises.writeFile(p, content);
  await fs.promises.utimes(p, mtime, mtime);
  return p;
}

const archived = (...parts: string[]): string => path.join(dir, 'archive', ...parts);
const read = (p: string): Promise<string> => fs.promises.readFile(p, 'utf8');
const opts = { afterDays: 3, toFolder: 'archive', now: NOW };

describe('withCollisionSuffix', () => {
  it('leaves the name alone for n=0 and suffixes the last extension only', () => {
    expect(withCollisionSuffix('data.csv', 0)).toBe('data.csv');
    expect(withCollisionSuffix('data.csv', 1)).toBe('data_1.csv');
    expect(withCollisionSuffix('data.csv', 12)).toBe('data_12.csv');
    expect(withCollisionSuffix('logs.tar.gz', 1)).toBe('logs.tar_1.gz');
    expect(withCollisionSuffix('README', 2)).toBe('README_2');
  });
});

describe('archiveTarget', () => {
  it('builds <folder>/<toFolder>/<YYYYMM>/<DD>/<name> from the local date', () => {
    expect(archiveTarget('/data', 'archive', 'a.csv', new Date(2026, 0, 5, 12))).toBe(
      path.join('/data', 'archive', '202601', '05', 'a.csv'),
    );
    // Late evening stays on its local day (in UTC it is already the next day west of Greenwich).
    expect(archiveTarget('/data', 'old', 'b.dat', new Date(2025, 11, 31, 23, 59, 59))).toBe(
      path.join('/data', 'old', '202512', '31', 'b.dat'),
    );
  });
});

describe('archiveExpiredFiles', () => {
  it('moves old files into the dated folder and leaves young ones', async () => {
    await writeFile('old.csv', 'old data', OLD);
    await writeFile('older.csv', 'older data', new Date(2025, 10, 23, 8, 30));
    await writeFile('young.csv', 'young data', new Date(NOW - 1 * DAY));
    // Exactly afterDays old is not "older than" afterDays.
    await writeFile('edge.csv', 'edge data', new Date(NOW - 3 * DAY));

    const moved = await archiveExpiredFiles(dir, opts);

    expect(moved).toEqual([
      { from: path.join(dir, 'old.csv'), to: archived('202601', '05', 'old.csv') },
      { from: path.join(dir, 'older.csv'), to: archived('202511', '23', 'older.csv') },
    ]);
    expect(await read(archived('202601', '05', 'old.csv'))).toBe('old data');
    expect(await read(archived('202511', '23', 'older.csv'))).toBe('older data');
    expect(fs.existsSync(path.join(dir, 'old.csv'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'older.csv'))).toBe(false);
    expect(await read(path.join(dir, 'young.csv'))).toBe('young data');
    expect(await read(path.join(dir, 'edge.csv'))).toBe('edge data');
  });

  it('keeps the mtime of a moved file', async () => {
    await writeFile('old.csv', 'x', OLD);
    await archiveExpiredFiles(dir, opts);
    const stat = await fs.promises.stat(archived('202601', '05', 'old.csv'));
    expect(stat.mtimeMs).toBe(OLD.getTime());
  });

  it('never overwrites: name_1.ext, then name_2.ext', async () => {
    await writeFile('archive/202601/05/data.csv', 'first', OLD);
    await writeFile('data.csv', 'second', OLD);
    expect(await archiveExpiredFiles(dir, opts)).toEqual([
      { from: path.join(dir, 'data.csv'), to: archived('202601', '05', 'data_1.csv') },
    ]);

    await writeFile('data.csv', 'third', OLD);
    expect(await archiveExpiredFiles(dir, opts)).toEqual([
      { from: path.join(dir, 'data.csv'), to: archived('202601', '05', 'data_2.csv') },
    ]);

    expect(await read(archived('202601', '05', 'data.csv'))).toBe('first');
    expect(await read(archived('202601', '05', 'data_1.csv'))).toBe('second');
    expect(await read(archived('202601', '05', 'data_2.csv'))).toBe('third');
  });

  it('suffixes extensionless and multi-dot names correctly', async () => {
    await writeFile('archive/202601/05/README', 'taken', OLD);
    await writeFile('archive/202601/05/logs.tar.gz', 'taken', OLD);
    await writeFile('archive/202601/05/logs.tar_1.gz', 'taken', OLD);
    await writeFile('README', 'readme', OLD);
    await writeFile('logs.tar.gz', 'tarball', OLD);

    const moved = await archiveExpiredFiles(dir, opts);

    expect(moved).toEqual([
      { from: path.join(dir, 'README'), to: archived('202601', '05', 'README_1') },
      { from: path.join(dir, 'logs.tar.gz'), to: archived('202601', '05', 'logs.tar_2.gz') },
    ]);
    expect(await read(archived('202601', '05', 'README_1'))).toBe('readme');
    expect(await read(archived('202601', '05', 'logs.tar_2.gz'))).toBe('tarball');
  });

  it('treats a dangling symlink in the archive as a taken name', async () => {
    await fs.promises.mkdir(archived('202601', '05'), { recursive: true });
    await fs.promises.symlink(path.join(dir, 'nowhere'), archived('202601', '05', 'a.csv'));
    await writeFile('a.csv', 'a', OLD);

    expect(await archiveExpiredFiles(dir, opts)).toEqual([
      { from: path.join(dir, 'a.csv'), to: archived('202601', '05', 'a_1.csv') },
    ]);
  });

  it('leaves dot files, sidecars, sub-folders and symlinks where they are', async () => {
    await writeFile('.hidden.csv', 'h', OLD);
    await writeFile('data.csv.notify', '', OLD);
    await writeFile('logger-7.heartbeat', '70', OLD);
    await writeFile('sub/inner.csv', 'inner', OLD);
    await fs.promises.utimes(path.join(dir, 'sub'), OLD, OLD);
    // A symlink (itself old) pointing at a file outside the folder, and one pointing at an old
    // file inside it: neither link moves; the real file does.
    const outside = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'pushtask-archive-out-'));
    try {
      await fs.promises.writeFile(path.join(outside, 'target.csv'), 't');
      await fs.promises.utimes(path.join(outside, 'target.csv'), OLD, OLD);
      await fs.promises.symlink(path.join(outside, 'target.csv'), path.join(dir, 'link-out.csv'));
      await fs.promises.lutimes(path.join(dir, 'link-out.csv'), OLD, OLD);
      await writeFile('real.csv', 'real', OLD);
      await fs.promises.symlink(path.join(dir, 'real.csv'), path.join(dir, 'link-in.csv'));
      await fs.promises.lutimes(path.join(dir, 'link-in.csv'), OLD, OLD);

      const moved = await archiveExpiredFiles(dir, opts);

      expect(moved).toEqual([{ from: path.join(dir, 'real.csv'), to: archived('202601', '05', 'real.csv') }]);
      expect((await fs.promises.readdir(dir)).sort()).toEqual([
        '.hidden.csv',
        'archive',
        'data.csv.notify',
        'link-in.csv',
        'link-out.csv',
        'logger-7.heartbeat',
        'sub',
      ]);
      expect(await read(path.join(dir, 'sub', 'inner.csv'))).toBe('inner');
      expect((await fs.promises.lstat(path.join(dir, 'link-out.csv'))).isSymbolicLink()).toBe(true);
      expect(await read(path.join(outside, 'target.csv'))).toBe('t');
      expect(await fs.promises.readdir(archived('202601', '05'))).toEqual(['real.csv']);
    } finally {
      await fs.promises.rm(outside, { recursive: true, force: true });
    }
  });

  it('with afterDays 0 moves everything older than now', async () => {
    await writeFile('a.csv', 'a', new Date(NOW - 1000));
    await writeFile('b.csv', 'b', new Date(NOW + 60_000)); // clock skew: from the future, stays
    expect(await archiveExpiredFiles(dir, { afterDays: 0, toFolder: 'archive', now: NOW })).toEqual([
      { from: path.join(dir, 'a.csv'), to: archived('202601', '20', 'a.csv') },
    ]);
    expect(await read(path.join(dir, 'b.csv'))).toBe('b');
  });

  it('uses a custom, nested toFolder', async () => {
    await writeFile('a.csv', 'a', OLD);
    expect(await archiveExpiredFiles(dir, { ...opts, toFolder: 'done/old' })).toEqual([
      { from: path.join(dir, 'a.csv'), to: path.join(dir, 'done', 'old', '202601', '05', 'a.csv') },
    ]);
  });

  it('falls back to copy + unlink when rename crosses devices, keeping the mtime', async () => {
    await writeFile('archive/202601/05/x.csv', 'taken', OLD);
    await writeFile('x.csv', 'cross-device', OLD);
    const exdev = Object.assign(new Error('EXDEV: cross-device link not permitted'), { code: 'EXDEV' });
    const rename = vi.spyOn(fs.promises, 'rename').mockRejectedValue(exdev);

    const moved = await archiveExpiredFiles(dir, opts);

    expect(rename).toHaveBeenCalledTimes(1);
    expect(moved).toEqual([{ from: path.join(dir, 'x.csv'), to: archived('202601', '05', 'x_1.csv') }]);
    expect(fs.existsSync(path.join(dir, 'x.csv'))).toBe(false);
    expect(await read(archived('202601', '05', 'x.csv'))).toBe('taken');
    expect(await read(archived('202601', '05', 'x_1.csv'))).toBe('cross-device');
    expect((await fs.promises.stat(archived('202601', '05', 'x_1.csv'))).mtimeMs).toBe(OLD.getTime());
  });

  it('returns [] for a missing folder, and for a folder with nothing expired', async () => {
    expect(await archiveExpiredFiles(path.join(dir, 'does-not-exist'), opts)).toEqual([]);
    await writeFile('young.csv', 'y', new Date(NOW - DAY));
    expect(await archiveExpiredFiles(dir, opts)).toEqual([]);
    expect(fs.existsSync(path.join(dir, 'archive'))).toBe(false);
  });

  it('defaults now to the current time', async () => {
    const recent = new Date(Date.now() - 2 * DAY);
    const stale = new Date(Date.now() - 4 * DAY);
    await writeFile('recent.csv', 'r', recent);
    await writeFile('stale.csv', 's', stale);
    const moved = await archiveExpiredFiles(dir, { afterDays: 3, toFolder: 'archive' });
    expect(moved).toEqual([
      { from: path.join(dir, 'stale.csv'), to: archiveTarget(dir, 'archive', 'stale.csv', stale) },
    ]);
    expect(await read(path.join(dir, 'recent.csv'))).toBe('r');
  });
});
