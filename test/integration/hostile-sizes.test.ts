/**
 * Hostile sizes, end to end through TaskMaster: zero-byte files on every transport (watched and
 * dropped), and a sparse file past 2 GiB (offsets above 2^31) delivered byte-identical, checked
 * by streamed sha256 (a 2 GiB file does not fit in one Buffer read).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { PushtaskConfig } from '../../src/config/schema.js';
import { startEmbeddedSftpServer, type EmbeddedSftpServer } from '../../src/embedded/sftpServer.js';
import { TaskMaster } from '../../src/index.js';
import type { UploadedEvent } from '../../src/master/events.js';
import { FAKE_APP_KEY, FakeDropbox } from '../helpers/fakeDropbox.js';
import { startFtpServer, type TestFtpServer } from '../helpers/ftpServer.js';
import { crashWatch, listFiles } from '../helpers/hostile.js';
import { recordCount } from '../helpers/hostileCounts.js';
import { useTestCertificates } from '../helpers/tls.js';
import { createWorkspace, nextEvent, testConfig, waitFor, waitForIdle, type Workspace } from '../helpers/workspace.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

let ws: Workspace;
let master: TaskMaster | null = null;
let sftpServer: EmbeddedSftpServer | null = null;
let ftpServer: TestFtpServer | null = null;
let dropbox: FakeDropbox | null = null;
const certs = useTestCertificates();

afterEach(async () => {
  await master?.stop();
  master = null;
  await sftpServer?.close();
  sftpServer = null;
  await ftpServer?.close();
  ftpServer = null;
  await dropbox?.close();
  dropbox = null;
  ws?.cleanup();
});

async function streamedSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(fs.createReadStream(file, { highWaterMark: 4 * MiB }), hash);
  return hash.digest('hex');
}

/** A sparse file of `size` bytes: holes, with a few real bytes at the start, just past 2^31 and at the end. */
function sparseFile(file: string, size: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const fd = fs.openSync(file, 'w');
  try {
    fs.ftruncateSync(fd, size);
    for (const [offset, text] of [
      [0, 'start'],
      [2 ** 31 - 3, 'across-2^31'],
      [size - 4, 'end!'],
    ] as const) {
      if (offset + text.length <= size) fs.writeSync(fd, text, offset);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Bytes free on the file system holding `dir`. */
function freeBytes(dir: string): number {
  const stats = fs.statfsSync(dir);
  return stats.bavail * stats.bsize;
}

describe('zero-byte files', () => {
  const cases: { name: string; transport: () => Promise<{ transport: PushtaskConfig['transport']; remote: (relative: string) => string }> }[] = [
    { name: 'local', transport: async () => ({ transport: { type: 'local', dir: 'remote' }, remote: (p) => ws.path('remote', p) }) },
    {
      name: 'sftp',
      transport: async () => {
        sftpServer = await startEmbeddedSftpServer({ root: ws.path('server'), username: 'u', password: 'pw-zero' });
        return {
          transport: { type: 'sftp', host: '127.0.0.1', port: sftpServer.port, username: 'u', password: 'pw-zero', remoteDir: 'in', hostKey: sftpServer.hostKeyFingerprint },
          remote: (p) => ws.path('server/in', p),
        };
      },
    },
    {
      name: 'ftp',
      transport: async () => {
        ftpServer = await startFtpServer({ root: ws.path('server') });
        const { host, port, user, password } = ftpServer;
        return { transport: { type: 'ftp', host, port, username: user, password, remoteDir: 'in', tls: { ca: certs.caFile } }, remote: (p) => ws.path('server/in', p) };
      },
    },
    {
      name: 'dropbox',
      transport: async () => {
        dropbox = await FakeDropbox.start();
        const fake = dropbox;
        return {
          transport: { type: 'dropbox', refreshToken: fake.refreshToken, appKey: FAKE_APP_KEY, remoteDir: '/in', baseUrl: fake.url },
          remote: (p) => fake.localPath(`/in/${p}`),
        };
      },
    },
  ];

  it.each(cases)('$name: a watched and a dropped empty file arrive empty; a file emptied later is replaced by an empty one', async ({ name, transport }) => {
    ws = createWorkspace();
    fs.mkdirSync(ws.path('server'), { recursive: true });
    ws.write('data/empty.csv', '');
    ws.write('data/shrinks.csv', 'some data\n');
    ws.write('drop/sub/empty.bin', '');
    const target = await transport();
    master = new TaskMaster(
      testConfig({ watch: [{ file: 'data/empty.csv' }, { file: 'data/shrinks.csv' }, { dir: 'drop', stableMs: 50 }], spoolDir: 'spool', transport: target.transport }),
      { cwd: ws.dir },
    );
    const uploads: UploadedEvent[] = [];
    master.on('uploaded', (e) => uploads.push(e));
    await master.start();
    const crashes = crashWatch(master);
    const isSize = (relative: string, size: number) => fs.existsSync(target.remote(relative)) && fs.statSync(target.remote(relative)).size === size;
    await waitFor(() => isSize('empty.csv', 0) && isSize('shrinks.csv', 10) && isSize('sub/empty.bin', 0), 'the empty files and the full one');
    await waitFor(() => uploads.length >= 3, 'three uploaded events');

    fs.truncateSync(ws.path('data/shrinks.csv'), 0);
    const emptied = nextEvent<UploadedEvent>(master, 'uploaded', (e) => e.remotePath === 'shrinks.csv' && e.bytes === 0);
    master.notify('data/shrinks.csv');
    await emptied;
    expect(isSize('shrinks.csv', 0)).toBe(true);
    expect(uploads.filter((e) => e.remotePath !== 'shrinks.csv').map((e) => e.bytes)).toEqual([0, 0]);
    crashes.assertStable();
    await recordCount(`sizes.zeroByte.${name}`, 3);
  });
});

describe('a sparse file past 2 GiB', () => {
  const size = 2 * GiB + 4097;
  /**
   * sha256 of what sparseFile() writes at this size (`sha256sum` of it): the test hashes only the
   * delivered copy, so it reads 2 GiB once instead of twice (about 15 s on a slow, shared core).
   */
  const SPARSE_SHA256 = '58e01afc8dedb7ec6a65e14b7f3d7e9d38bcbb93ce5278d6dbe36bcf6458bae2';

  it('local: delivered byte-identical (streamed sha256), the spool emptied afterwards', async () => {
    ws = createWorkspace();
    // Spool copy and delivered copy may each take the full size on disk (copies fill the holes).
    if (freeBytes(ws.dir) < 3 * size) {
      console.warn(`skipping the 2 GiB case: only ${Math.round(freeBytes(ws.dir) / MiB)} MiB free`);
      return;
    }
    sparseFile(ws.path('drop/huge.bin'), size);
    master = new TaskMaster(testConfig({ watch: [{ dir: 'drop', stableMs: 50 }], spoolDir: 'spool' }), { cwd: ws.dir });
    const uploaded = nextEvent<UploadedEvent>(master, 'uploaded', (e) => e.remotePath === 'huge.bin', 90_000);
    await master.start();
    const crashes = crashWatch(master);
    expect((await uploaded).bytes).toBe(size);
    const remote = ws.path('remote/huge.bin');
    expect(fs.statSync(remote).size).toBe(size);
    expect(await streamedSha256(remote)).toBe(SPARSE_SHA256);
    await waitForIdle(master.config.spoolDir);
    expect(listFiles(ws.path('spool')).filter((name) => name.endsWith('.snap'))).toEqual([]);
    crashes.assertStable();
    await recordCount('sizes.sparse2GiB.local', 1);
  }, 150_000);

  it('sftp: a sparse 256 MiB file with bytes near the end, byte-identical', async () => {
    ws = createWorkspace();
    const sftpSize = 256 * MiB + 7;
    if (freeBytes(ws.dir) < 3 * sftpSize) return;
    sparseFile(ws.path('drop/big.bin'), sftpSize);
    fs.mkdirSync(ws.path('server'), { recursive: true });
    sftpServer = await startEmbeddedSftpServer({ root: ws.path('server'), username: 'u', password: 'pw-sparse' });
    master = new TaskMaster(
      testConfig({
        watch: [{ dir: 'drop', stableMs: 50 }],
        spoolDir: 'spool',
        transport: { type: 'sftp', host: '127.0.0.1', port: sftpServer.port, username: 'u', password: 'pw-sparse', remoteDir: 'in', hostKey: sftpServer.hostKeyFingerprint },
      }),
      { cwd: ws.dir },
    );
    const uploaded = nextEvent<UploadedEvent>(master, 'uploaded', (e) => e.remotePath === 'big.bin', 90_000);
    await master.start();
    const crashes = crashWatch(master);
    expect((await uploaded).bytes).toBe(sftpSize);
    expect(await streamedSha256(ws.path('server/in/big.bin'))).toBe(await streamedSha256(ws.path('drop/big.bin')));
    crashes.assertStable();
    await recordCount('sizes.sparse256MiB.sftp', 1);
  }, 120_000);
});
