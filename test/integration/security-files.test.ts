/**
 * What the agent writes on the client is owner-only, whatever the umask: the test runs with umask
 * 0, so a file or folder created without an explicit mode would show up as 0666/0777. Checked:
 * the spool folder and its parent, status.json, state.json, queued snapshots (bytes and metas),
 * host keys pinned with accept-new, the log folder and both log files.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startEmbeddedSftpServer, type EmbeddedSftpServer } from '../../src/embedded/sftpServer.js';
import { TaskMaster } from '../../src/index.js';
import type { UploadFailedEvent } from '../../src/master/events.js';
import { recordCount } from '../helpers/hostileCounts.js';
import { createWorkspace, nextEvent, sameBytes, testConfig, waitFor, waitForIdle, type Workspace } from '../helpers/workspace.js';

let ws: Workspace;
let master: TaskMaster | null = null;
let server: EmbeddedSftpServer | null = null;
let savedUmask: number;

beforeEach(() => {
  savedUmask = process.umask(0); // the subtask inherits it
});

afterEach(async () => {
  await master?.stop();
  master = null;
  await server?.close();
  server = null;
  process.umask(savedUmask);
  ws?.cleanup();
});

const modeOf = (file: string) => fs.statSync(file).mode & 0o777;

function modes(files: string[]): Record<string, string> {
  return Object.fromEntries(files.map((file) => [path.relative(ws.dir, file), modeOf(file).toString(8)]));
}

describe('files the agent creates are owner-only (umask 0)', () => {
  it('spool (default location), queued snapshots, status.json, logs', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'private data\n');
    ws.write('data/b.csv', 'more private data\n');
    // A destination that cannot be created keeps the snapshots queued in the spool.
    ws.write('blocked', 'a file where the destination folder should be');
    master = new TaskMaster(
      testConfig({ watch: [{ file: 'data/a.csv' }, { file: 'data/b.csv' }], transport: { type: 'local', dir: 'blocked/remote' } }),
      { cwd: ws.dir },
    );
    const failed = nextEvent<UploadFailedEvent>(master, 'upload-failed');
    await master.start();
    await failed;
    const spool = master.config.spoolDir;
    expect(spool).toBe(ws.path('data/upload/local'));
    await waitFor(() => fs.readdirSync(spool).filter((name) => /\.(snap|json)$/.test(name) && name !== 'status.json').length >= 4, 'two queued snapshots');
    await waitFor(() => fs.existsSync(path.join(spool, 'status.json')), 'status.json');

    const snapshots = fs.readdirSync(spool).filter((name) => /^[0-9a-f]{20}\.\d+\.(snap|json)$/.test(name)).map((name) => path.join(spool, name));
    const dirs = [ws.path('data/upload'), spool, ws.path('logs')];
    const files = [...snapshots, path.join(spool, 'status.json'), ws.path('logs/pushtask-master.log'), ws.path('logs/pushtask-subtask.log')];
    expect(modes(dirs)).toEqual(Object.fromEntries(dirs.map((dir) => [path.relative(ws.dir, dir), '700'])));
    expect(modes(files)).toEqual(Object.fromEntries(files.map((file) => [path.relative(ws.dir, file), '600'])));
    await recordCount('files.modes.queued', dirs.length + files.length);
  });

  it('state.json after deliveries, and host keys pinned on first use', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'x\n');
    fs.mkdirSync(ws.path('server'), { recursive: true });
    server = await startEmbeddedSftpServer({ root: ws.path('server'), username: 'u', password: 'pw-modes' });
    master = new TaskMaster(
      testConfig({
        watch: [{ file: 'data/a.csv' }],
        spoolDir: 'spool/deeper',
        transport: { type: 'sftp', host: '127.0.0.1', port: server.port, username: 'u', password: 'pw-modes', remoteDir: 'in', hostKey: 'accept-new' },
      }),
      { cwd: ws.dir },
    );
    await master.start();
    await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('server/in/a.csv')), 'delivery');
    await waitForIdle(master.config.spoolDir);
    await master.stop({ forceKill: false }); // saves the ledger
    master = null;
    const files = [ws.path('spool/deeper/state.json'), ws.path('spool/deeper/status.json'), ws.path('spool/deeper/known_hosts')];
    const dirs = [ws.path('spool'), ws.path('spool/deeper')];
    expect(modes(files)).toEqual(Object.fromEntries(files.map((file) => [path.relative(ws.dir, file), '600'])));
    expect(modes(dirs)).toEqual(Object.fromEntries(dirs.map((dir) => [path.relative(ws.dir, dir), '700'])));
    await recordCount('files.modes.delivered', dirs.length + files.length);
  });
});
