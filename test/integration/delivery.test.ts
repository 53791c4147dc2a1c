import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskMaster } from '../../src/index.js';
import type { UploadedEvent } from '../../src/master/events.js';
import type { AgentStatus } from '../../src/subtask/status.js';
import { createWorkspace, nextEvent, sameBytes, testConfig, waitFor, type Workspace } from '../helpers/workspace.js';

let ws: Workspace;
let master: TaskMaster | null = null;

afterEach(async () => {
  await master?.stop();
  master = null;
  ws?.cleanup();
});

function startMaster(config: Parameters<typeof testConfig>[0]): TaskMaster {
  master = new TaskMaster(testConfig(config), { cwd: ws.dir });
  return master;
}

describe('watched files', () => {
  it('delivers a byte-identical copy after each notify, seen through the watch long before the poll', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'time,value\n');
    const m = startMaster({ watch: [{ file: 'data/a.csv' }], intervalMs: 60_000 });
    // The start-up catch-up of the never-delivered file; it may land before start() resolves.
    const caughtUp = nextEvent(m, 'uploaded');
    await m.start({ uploadResiduals: false });
    await caughtUp;

    for (let row = 0; row < 5; row += 1) {
      ws.append('data/a.csv', `${row},${row * 2}\n`);
      const size = fs.statSync(ws.path('data/a.csv')).size;
      const uploaded = nextEvent<UploadedEvent>(m, 'uploaded', (e) => e.bytes === size, 5000);
      m.notify('data/a.csv');
      await uploaded;
      expect(sameBytes(ws.path('data/a.csv'), ws.path('remote/a.csv'))).toBe(true);
    }
  });

  it('polls sidecars every interval when file-system events are off', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'x\n');
    const m = startMaster({ watch: [{ file: 'data/a.csv' }], fsEvents: false, intervalMs: 100 });
    await m.start();
    await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('remote/a.csv')), 'first delivery');
    ws.append('data/a.csv', 'y\n');
    m.notify(ws.path('data/a.csv'));
    await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('remote/a.csv')), 'delivery by polling', 3000);
  });

  it('rejects notify() of an unknown file or index with a clear error, and never throws for a missing folder', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'x');
    const m = startMaster({ watch: [{ file: 'data/a.csv' }, { dir: 'drop' }] });
    expect(() => m.notify('data/b.csv')).toThrow(/not a watched file.*a\.csv/);
    expect(() => m.notifyIndex(1)).toThrow(/no watched file at that index/);
    expect(() => m.notifyIndex(7)).toThrow(/no watched file at that index/);
    fs.rmSync(ws.path('data'), { recursive: true });
    const errors: Error[] = [];
    m.on('error', (error) => errors.push(error));
    expect(() => m.notify('data/a.csv')).not.toThrow();
    expect(errors).toHaveLength(1);
  });

  it('writes status.json with counters, last upload per file and the connection state', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'hello');
    const m = startMaster({ watch: [{ file: 'data/a.csv' }] });
    await m.start();
    await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('remote/a.csv')), 'delivery');
    const statusFile = path.join(m.config.spoolDir, 'status.json');
    await waitFor(() => {
      if (!fs.existsSync(statusFile)) return false;
      const status = JSON.parse(fs.readFileSync(statusFile, 'utf8'));
      return status.counters.uploads >= 1 && status.queue.length === 0;
    }, 'status.json to show the upload');
    const status = JSON.parse(fs.readFileSync(statusFile, 'utf8'));
    expect(status.connection.state).toBe('connected');
    expect(status.files[ws.path('data/a.csv')].lastUpload.remotePath).toBe('a.csv');
    expect(status.files[ws.path('data/a.csv')].lastUpload.bytes).toBe(5);
  });
});

describe('drop folders', () => {
  it('uploads files once stable, keeps sub-folder paths, creates sidecars and skips ignored names', async () => {
    ws = createWorkspace();
    fs.mkdirSync(ws.path('drop'), { recursive: true });
    const m = startMaster({ watch: [{ dir: 'drop', stableMs: 100 }] });
    await m.start();
    ws.write('drop/one.txt', 'one');
    ws.write('drop/sub/deeper/two.bin', Buffer.alloc(100_000, 7));
    for (const ignored of ['.hidden', 'part.tmp', 'x.partial', 'y.crdownload', 'z~']) ws.write(`drop/${ignored}`, 'no');
    await waitFor(
      () => sameBytes(ws.path('drop/one.txt'), ws.path('remote/one.txt')) && sameBytes(ws.path('drop/sub/deeper/two.bin'), ws.path('remote/sub/deeper/two.bin')),
      'drop-folder files delivered',
    );
    expect(fs.existsSync(ws.path('drop/one.txt.notify'))).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(fs.readdirSync(ws.path('remote')).sort()).toEqual(['one.txt', 'sub']);
  });

  it('uploads a drop-folder backlog found at start at once, while a file written just now still waits for stableMs', async () => {
    ws = createWorkspace();
    const hourAgo = new Date(Date.now() - 3_600_000);
    for (const name of ['old-1.txt', 'old-2.txt', 'sub/old-3.txt']) {
      ws.write(`drop/${name}`, `backlog ${name}`);
      fs.utimesSync(ws.path(`drop/${name}`), hourAgo, hourAgo);
    }
    ws.write('drop/fresh.txt', 'written a moment ago');
    const m = startMaster({ watch: [{ dir: 'drop', stableMs: 30_000 }] });
    const uploads: UploadedEvent[] = [];
    m.on('uploaded', (e) => uploads.push(e));
    await m.start();
    await waitFor(() => uploads.length >= 3, 'the backlog delivered well before stableMs', 10_000);
    expect(uploads.map((e) => e.remotePath).sort()).toEqual(['old-1.txt', 'old-2.txt', 'sub/old-3.txt']);
    expect(sameBytes(ws.path('drop/sub/old-3.txt'), ws.path('remote/sub/old-3.txt'))).toBe(true);
    expect(fs.existsSync(ws.path('remote/fresh.txt'))).toBe(false);
    await waitFor(() => fs.existsSync(ws.path('drop/old-1.txt.notify')), 'its sidecar');
  });

  it('copies a drop-folder backlog into the spool only a few files ahead of the uploads, lists the rest as queued, and a restart delivers it all', async () => {
    ws = createWorkspace();
    const count = 40;
    for (let i = 0; i < count; i += 1) ws.write(`drop/f${String(i).padStart(2, '0')}.bin`, `file ${i} `.repeat(100));
    // A file where the remote folder should be: every upload fails until it is gone.
    ws.write('remote', 'not a folder');
    const config = { watch: [{ dir: 'drop', stableMs: 0 }], spoolDir: 'spool' };
    const m = startMaster(config);
    await m.start({ uploadResiduals: false });
    const status = () => JSON.parse(fs.readFileSync(ws.path('spool/status.json'), 'utf8')) as AgentStatus;
    const snapshotsInSpool = () => fs.readdirSync(ws.path('spool')).filter((name) => name.endsWith('.snap')).length;
    await waitFor(() => status().queue.length + status().inFlight.length === count, `status.json listing all ${count} files`, 10_000);
    // One lane: 4 snapshots queued ahead of it (MIN_LOOKAHEAD), plus the one it tries.
    let most = 0;
    for (let look = 0; look < 10; look += 1) {
      most = Math.max(most, snapshotsInSpool());
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(5);
    const dropped = fs.readdirSync(ws.path('drop')).reduce((sum, name) => sum + fs.statSync(ws.path(`drop/${name}`)).size, 0);
    expect(status().queue.bytes + status().inFlight.reduce((sum, item) => sum + item.bytes, 0)).toBe(dropped);
    // Killed while most files wait in the drop folder: a new start delivers every one.
    await m.stop();
    fs.rmSync(ws.path('remote'));
    const again = startMaster(config);
    await again.start({ uploadResiduals: false });
    for (let i = 0; i < count; i += 1) {
      const name = `f${String(i).padStart(2, '0')}.bin`;
      await waitFor(() => sameBytes(ws.path(`drop/${name}`), ws.path(`remote/${name}`)), `${name} delivered after the restart`, 10_000);
    }
  });

  it('waits until a growing file holds still before uploading it', async () => {
    ws = createWorkspace();
    fs.mkdirSync(ws.path('drop'), { recursive: true });
    // stableMs far above the 60 ms between appends, so a loaded machine cannot fake a pause.
    const m = startMaster({ watch: [{ dir: 'drop', stableMs: 1500 }] });
    const uploads: UploadedEvent[] = [];
    m.on('uploaded', (e) => uploads.push(e));
    await m.start();
    for (let i = 0; i < 10; i += 1) {
      ws.append('drop/growing.log', `line ${i}\n`);
      await new Promise((resolve) => setTimeout(resolve, 60));
    }
    // The file lands remotely a moment before its `uploaded` event reaches the master: wait for both.
    await waitFor(() => uploads.length > 0 && sameBytes(ws.path('drop/growing.log'), ws.path('remote/growing.log')), 'growing file delivered');
    expect(uploads.map((e) => e.bytes)).toEqual([fs.statSync(ws.path('drop/growing.log')).size]);
  });

  it('re-uploads a drop-folder file when its sidecar is touched', async () => {
    ws = createWorkspace();
    ws.write('drop/report.txt', 'v1');
    const m = startMaster({ watch: [{ dir: 'drop', stableMs: 50 }] });
    await m.start({ uploadResiduals: false });
    await waitFor(() => sameBytes(ws.path('drop/report.txt'), ws.path('remote/report.txt')), 'first upload');
    fs.rmSync(ws.path('remote/report.txt'));
    const later = new Date(Date.now() + 1000);
    fs.utimesSync(ws.path('drop/report.txt.notify'), later, later);
    await waitFor(() => fs.existsSync(ws.path('remote/report.txt')), 're-upload after touching the sidecar');
  });

  it('does not follow symlinks out of the drop folder', async () => {
    ws = createWorkspace();
    ws.write('secret/passwords.txt', 'do not upload');
    fs.mkdirSync(ws.path('drop'), { recursive: true });
    fs.symlinkSync(ws.path('secret/passwords.txt'), ws.path('drop/link.txt'));
    fs.symlinkSync(ws.path('secret'), ws.path('drop/linkdir'));
    ws.write('drop/real.txt', 'ok');
    const m = startMaster({ watch: [{ dir: 'drop', stableMs: 50 }] });
    await m.start();
    await waitFor(() => fs.existsSync(ws.path('remote/real.txt')), 'the real file');
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(fs.readdirSync(ws.path('remote'))).toEqual(['real.txt']);
  });
});
