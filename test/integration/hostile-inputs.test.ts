/**
 * Hostile inputs other than file names, through a real TaskMaster and subtask (local transport):
 * notify() paths that are not watched files, `.notify` sidecars without a data file, watched files
 * deleted or replaced by a folder or a FIFO, symbolic links out of a drop folder (followed only when
 * configured) and symlink loops. Each gets a clear error or log line; the subtask never restarts,
 * nothing lands outside remoteDir, and the agent keeps delivering.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { PushtaskError, TaskMaster } from '../../src/index.js';
import type { UploadedEvent } from '../../src/master/events.js';
import { crashWatch, listFiles, logRecords } from '../helpers/hostile.js';
import { recordCount } from '../helpers/hostileCounts.js';
import { createWorkspace, nextEvent, sameBytes, testConfig, waitFor, waitForIdle, type Workspace } from '../helpers/workspace.js';

let ws: Workspace;
let master: TaskMaster | null = null;

afterEach(async () => {
  await master?.stop();
  master = null;
  ws?.cleanup();
});

function start(config: Parameters<typeof testConfig>[0]): TaskMaster {
  master = new TaskMaster(testConfig({ spoolDir: 'spool', ...config }), { cwd: ws.dir });
  return master;
}

/** Sets a file's mtime into the future: a touch the subtask has not seen yet. */
function touchLater(file: string, aheadMs = 2000): void {
  const later = new Date(Date.now() + aheadMs);
  fs.utimesSync(file, later, later);
}

function logged(m: TaskMaster, pattern: RegExp, minLevel = 40): boolean {
  return logRecords(m.config.log.subtaskFile).some((r) => r.level >= minLevel && pattern.test(r.msg));
}

describe('notify() with paths that are not watched files', () => {
  const bad = ['../outside.csv', 'data/../../outside.csv', '/etc/passwd', '', 'data', 'data/b.csv', 'data/a.csv\0', 'DATA/A.CSV', 'data/a.csv.notify'];

  it('throws UNKNOWN_FILE naming the path and the watched files; other spellings of a watched path work', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'x\n');
    const m = start({ watch: [{ file: 'data/a.csv' }, { dir: 'drop' }] });
    await m.start();
    const crashes = crashWatch(m);
    for (const file of bad) {
      let error: unknown;
      try {
        m.notify(file);
      } catch (caught) {
        error = caught;
      }
      expect(error, JSON.stringify(file)).toBeInstanceOf(PushtaskError);
      expect((error as PushtaskError).code).toBe('UNKNOWN_FILE');
      expect((error as PushtaskError).message).toContain(JSON.stringify(file));
      expect((error as PushtaskError).message).toContain(ws.path('data/a.csv'));
    }
    for (const index of [-1, 1, 2, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER]) {
      expect(() => m.notifyIndex(index), String(index)).toThrow(/no watched file at that index \(valid: 0\)/);
    }
    // Odd but correct spellings of the watched file: absolute, with `..`, with `./` and a trailing slash.
    await waitForIdle(m.config.spoolDir);
    for (const spelling of [ws.path('data/a.csv'), 'data/../data/a.csv', './data/a.csv', 'data//a.csv']) {
      ws.append('data/a.csv', `${spelling}\n`);
      const size = fs.statSync(ws.path('data/a.csv')).size;
      const uploaded = nextEvent<UploadedEvent>(m, 'uploaded', (e) => e.bytes === size);
      m.notify(spelling);
      await uploaded;
    }
    expect(sameBytes(ws.path('data/a.csv'), ws.path('remote/a.csv'))).toBe(true);
    expect(listFiles(ws.path('remote'))).toEqual(['a.csv']);
    crashes.assertStable();
    await recordCount('inputs.notifyPaths', bad.length + 6 + 4);
  });
});

describe('sidecars without data', () => {
  it('a .notify touched in a drop folder for a file that does not exist: a log line, nothing uploaded', async () => {
    ws = createWorkspace();
    ws.write('drop/ghost.txt.notify', '');
    ws.write('drop/sub/ghost2.csv.notify', '');
    const m = start({ watch: [{ dir: 'drop', stableMs: 50 }] });
    await m.start();
    const crashes = crashWatch(m);
    touchLater(ws.path('drop/ghost.txt.notify'));
    touchLater(ws.path('drop/sub/ghost2.csv.notify'));
    await waitFor(() => logged(m, /ghost\.txt\.notify.*does not exist/) && logged(m, /ghost2\.csv\.notify.*does not exist/), 'a log line per ghost sidecar');
    ws.write('drop/real.txt', 'real');
    await waitFor(() => sameBytes(ws.path('drop/real.txt'), ws.path('remote/real.txt')), 'a real file after the ghosts');
    expect(listFiles(ws.path('remote'))).toEqual(['real.txt']);
    crashes.assertStable();
  });

  it('a sidecar of a sidecar (x.notify.notify) never uploads the sidecar itself', async () => {
    ws = createWorkspace();
    ws.write('drop/x.txt.notify.notify', ''); // seen at start; touched later
    const m = start({ watch: [{ dir: 'drop', stableMs: 50 }] });
    await m.start();
    const crashes = crashWatch(m);
    ws.write('drop/x.txt', 'x');
    await waitFor(() => sameBytes(ws.path('drop/x.txt'), ws.path('remote/x.txt')) && fs.existsSync(ws.path('drop/x.txt.notify')), 'x.txt and its sidecar');
    touchLater(ws.path('drop/x.txt.notify.notify'));
    await waitFor(() => logged(m, /x\.txt\.notify\.notify was touched, but a sidecar is never uploaded/), 'the sidecar of a sidecar refused');
    // A real touch of x.txt's own sidecar after that re-uploads x.txt: the subtask saw both.
    fs.rmSync(ws.path('remote/x.txt'));
    touchLater(ws.path('drop/x.txt.notify'), 3000);
    await waitFor(() => fs.existsSync(ws.path('remote/x.txt')), 're-upload through the real sidecar');
    await waitForIdle(m.config.spoolDir);
    expect(listFiles(ws.path('remote'))).toEqual(['x.txt']);
    crashes.assertStable();
  });

  it('a watched file deleted, then notified: a warning, no upload, and delivery once it is back', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'v1');
    const m = start({ watch: [{ file: 'data/a.csv' }] });
    const first = nextEvent(m, 'uploaded');
    await m.start();
    const crashes = crashWatch(m);
    await first;
    const uploads: UploadedEvent[] = [];
    m.on('uploaded', (e) => uploads.push(e));
    fs.rmSync(ws.path('data/a.csv'));
    m.notify('data/a.csv');
    await waitFor(() => logged(m, /a\.csv was notified but does not exist; nothing to upload/), 'the warning');
    expect(uploads).toEqual([]);
    expect(fs.readFileSync(ws.path('remote/a.csv'), 'utf8')).toBe('v1');
    ws.write('data/a.csv', 'v2');
    m.notify('data/a.csv');
    await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('remote/a.csv')), 'delivery of the new file');
    crashes.assertStable();
  });

  it('a watched path that is a folder or a FIFO: nothing is read, a warning, no hang', async () => {
    ws = createWorkspace();
    fs.mkdirSync(ws.path('data/folder.csv'), { recursive: true });
    execFileSync('mkfifo', [ws.path('data/pipe.csv')]);
    execFileSync('mkfifo', [ws.path('drop-pipe')]);
    fs.mkdirSync(ws.path('drop'), { recursive: true });
    execFileSync('mkfifo', [ws.path('drop/fifo.txt')]);
    ws.write('data/ok.csv', 'ok');
    const m = start({ watch: [{ file: 'data/ok.csv' }, { file: 'data/folder.csv' }, { file: 'data/pipe.csv' }, { dir: 'drop', stableMs: 50 }] });
    await m.start();
    const crashes = crashWatch(m);
    m.notify('data/folder.csv');
    m.notify('data/pipe.csv');
    await waitFor(() => logged(m, /folder\.csv was notified but does not exist/) && logged(m, /pipe\.csv was notified but does not exist/), 'a warning for each');
    ws.append('data/ok.csv', '!');
    m.notify('data/ok.csv');
    await waitFor(() => sameBytes(ws.path('data/ok.csv'), ws.path('remote/ok.csv')), 'the regular file');
    expect(listFiles(ws.path('remote'))).toEqual(['ok.csv']);
    crashes.assertStable();
  });
});

describe('symbolic links in drop folders', () => {
  function outsideTree(): void {
    ws.write('outside/secret.txt', 'never upload me');
    ws.write('outside/dir/inner.txt', 'nor me');
  }

  it('not followed by default, also when created while the agent runs', async () => {
    ws = createWorkspace();
    outsideTree();
    fs.mkdirSync(ws.path('drop'), { recursive: true });
    const m = start({ watch: [{ dir: 'drop', stableMs: 50 }] });
    await m.start();
    const crashes = crashWatch(m);
    fs.symlinkSync(ws.path('outside/secret.txt'), ws.path('drop/link.txt'));
    fs.symlinkSync(ws.path('outside/dir'), ws.path('drop/linkdir'));
    fs.symlinkSync('../outside/secret.txt', ws.path('drop/relative-link.txt'));
    fs.symlinkSync(ws.path('drop'), ws.path('drop/loop'));
    fs.symlinkSync(ws.path('nowhere'), ws.path('drop/dangling'));
    ws.write('drop/real.txt', 'real');
    await waitFor(() => sameBytes(ws.path('drop/real.txt'), ws.path('remote/real.txt')), 'the real file');
    // Several rescans later, still only the real file.
    await waitFor(() => logRecords(m.config.log.subtaskFile).length > 0, 'the subtask log');
    await new Promise((resolve) => setTimeout(resolve, 3 * 200));
    expect(listFiles(ws.path('remote'))).toEqual(['real.txt']);
    crashes.assertStable();
  });

  it('followed with followSymlinks: true (the user asked), and a symlink loop neither crashes nor recurses forever', async () => {
    ws = createWorkspace();
    outsideTree();
    fs.mkdirSync(ws.path('drop'), { recursive: true });
    fs.symlinkSync(ws.path('outside/secret.txt'), ws.path('drop/link.txt'));
    fs.symlinkSync(ws.path('outside/dir'), ws.path('drop/linkdir'));
    fs.symlinkSync(ws.path('drop'), ws.path('drop/loop'));
    fs.symlinkSync(ws.path('nowhere'), ws.path('drop/dangling'));
    ws.write('drop/real.txt', 'real');
    const m = start({ watch: [{ dir: 'drop', stableMs: 50, followSymlinks: true }] });
    await m.start();
    const crashes = crashWatch(m);
    await waitFor(
      () =>
        sameBytes(ws.path('drop/real.txt'), ws.path('remote/real.txt')) &&
        sameBytes(ws.path('outside/secret.txt'), ws.path('remote/link.txt')) &&
        sameBytes(ws.path('outside/dir/inner.txt'), ws.path('remote/linkdir/inner.txt')),
      'the real file and the linked ones',
    );
    ws.write('drop/later.txt', 'later');
    await waitFor(() => sameBytes(ws.path('drop/later.txt'), ws.path('remote/later.txt')), 'a file dropped later');
    await waitForIdle(m.config.spoolDir);
    // The loop yields at most a bounded number of copies of the same files, never an endless tree.
    const remote = listFiles(ws.path('remote'));
    expect(remote.filter((file) => !file.startsWith('loop/'))).toEqual(['later.txt', 'link.txt', 'linkdir/inner.txt', 'real.txt']);
    expect(Math.max(...remote.map((file) => file.split('/').length))).toBeLessThan(45);
    expect(fs.readdirSync(ws.dir).sort()).toEqual(['drop', 'logs', 'outside', 'remote', 'spool']);
    crashes.assertStable();
  });
});

describe('sidecars that cannot be read', () => {
  it('a .notify that is a symlink loop, in a drop folder and next to a watched file: no crash (loop), the rest delivered', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'a');
    fs.mkdirSync(ws.path('drop'), { recursive: true });
    fs.symlinkSync('x.txt.notify', ws.path('drop/x.txt.notify')); // points at itself: ELOOP
    ws.write('drop/x.txt', 'x');
    const m = start({ watch: [{ file: 'data/a.csv' }, { dir: 'drop', stableMs: 50 }] });
    await m.start();
    const crashes = crashWatch(m);
    await waitFor(() => sameBytes(ws.path('drop/x.txt'), ws.path('remote/x.txt')), 'the drop-folder file');
    // Now the watched file's sidecar becomes a loop too, while the agent runs.
    fs.rmSync(ws.path('data/a.csv.notify'), { force: true });
    fs.symlinkSync('a.csv.notify', ws.path('data/a.csv.notify'));
    ws.write('drop/later.txt', 'later');
    await waitFor(() => sameBytes(ws.path('drop/later.txt'), ws.path('remote/later.txt')), 'a later drop-folder file');
    expect(m.subtaskPid).toBe(crashes.pid);
    crashes.assertStable();
  });
});

describe('watched files that cannot be read', () => {
  it('a watched file that is a symlink loop: the agent starts, says why, and delivers the other files', async () => {
    ws = createWorkspace();
    ws.write('data/ok.csv', 'ok');
    fs.mkdirSync(ws.path('data'), { recursive: true });
    fs.symlinkSync('loop.csv', ws.path('data/loop.csv'));
    const m = start({ watch: [{ file: 'data/loop.csv' }, { file: 'data/ok.csv' }] });
    await m.start();
    const crashes = crashWatch(m);
    await waitFor(() => sameBytes(ws.path('data/ok.csv'), ws.path('remote/ok.csv')), 'the readable file');
    m.notify('data/loop.csv');
    await waitFor(() => logged(m, /loop\.csv.*ELOOP/, 50), 'an error naming the file and the cause');
    ws.append('data/ok.csv', '!');
    m.notify('data/ok.csv');
    await waitFor(() => sameBytes(ws.path('data/ok.csv'), ws.path('remote/ok.csv')), 'the readable file again');
    crashes.assertStable();
  });
});

describe('folder layouts', () => {
  it("pysubtask's layout: a drop folder inside the log folder (logs/watch_all_in_here) is delivered", async () => {
    ws = createWorkspace();
    ws.write('logs/test1.csv', 'a,b\n');
    ws.write('logs/watch_all_in_here/dropped.txt', 'dropped before start');
    const m = start({ watch: [{ file: 'logs/test1.csv' }, { dir: 'logs/watch_all_in_here', stableMs: 50 }], spoolDir: undefined, log: { dir: 'logs', level: 'info', console: false } });
    await m.start();
    const crashes = crashWatch(m);
    ws.write('logs/watch_all_in_here/sub/later.txt', 'dropped while running');
    await waitFor(
      () =>
        sameBytes(ws.path('logs/watch_all_in_here/dropped.txt'), ws.path('remote/dropped.txt')) &&
        sameBytes(ws.path('logs/watch_all_in_here/sub/later.txt'), ws.path('remote/sub/later.txt')) &&
        sameBytes(ws.path('logs/test1.csv'), ws.path('remote/test1.csv')),
      'the drop-folder files and the watched file',
    );
    // Our own log files and spool are still never uploaded.
    await waitForIdle(m.config.spoolDir);
    expect(listFiles(ws.path('remote'))).toEqual(['dropped.txt', 'sub/later.txt', 'test1.csv']);
    crashes.assertStable();
  });
});

describe('a log file that cannot be opened', () => {
  it('the host process warns once and exits cleanly (no "sonic boom is not ready yet" from the exit hook)', () => {
    ws = createWorkspace();
    fs.mkdirSync(ws.path('logs/pushtask-master.log'), { recursive: true }); // a folder where the file goes: EISDIR
    const index = pathToFileURL(path.resolve('src/index.ts')).href;
    ws.write('host.mts', `import { TaskMaster } from ${JSON.stringify(index)};\nconst m = new TaskMaster({ watch: [{ file: 'data/a.csv' }], log: { dir: 'logs', console: false } }, { cwd: ${JSON.stringify(ws.dir)} });\nm.notifyIndex(0);\n`);
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const run = spawnSync(process.execPath, ['--import', tsx, ws.path('host.mts')], { cwd: ws.dir, encoding: 'utf8', timeout: 30_000 });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/cannot write log file .*pushtask-master\.log: .*(EISDIR|it is not a file)/);
    expect(run.stderr).not.toMatch(/sonic boom|Error:/);
  });
});
