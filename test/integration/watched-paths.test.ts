/** A watched path that does not exist is caught at start, not watched in silence (issue 13). */
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskMaster } from '../../src/index.js';
import { checkWatchedPaths } from '../../src/master/watchedPaths.js';
import { createWorkspace, testConfig, type Workspace } from '../helpers/workspace.js';

let ws: Workspace;
let master: TaskMaster | null = null;

afterEach(async () => {
  await master?.stop();
  master = null;
  ws?.cleanup();
});

describe('watched paths at start', () => {
  it('refuses a missing drop folder or data folder, naming the field, and creates nothing', async () => {
    ws = createWorkspace();
    const config = testConfig({ watch: [{ dir: 'drop-typo' }, { file: 'no-such/data.csv' }] });
    config.watch = [{ dir: 'drop-typo', create: false }, { file: 'no-such/data.csv', create: false }];
    master = new TaskMaster(config, { cwd: ws.dir });
    const error = await master.start().then(
      () => null,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(error?.code).toBe('CONFIG_INVALID');
    expect(error?.message).toMatch(/watch\.0\.dir: the drop folder .*drop-typo does not exist \(a typo\?\); create it, or set `create: true`/);
    expect(error?.message).toMatch(/watch\.1\.file: the folder of data\.csv .*no-such does not exist/);
    expect(fs.existsSync(ws.path('drop-typo'))).toBe(false);
    expect(fs.existsSync(ws.path('no-such'))).toBe(false);
    expect(master.running).toBe(false);
  });

  it('creates them with `create: true`, and only warns about a data file its logger has not written yet', async () => {
    ws = createWorkspace();
    master = new TaskMaster(testConfig({ watch: [{ dir: 'drop', create: true }, { file: 'data/a.csv', create: true }] }), { cwd: ws.dir });
    expect(checkWatchedPaths(master.config)).toEqual({ problems: [], toCreate: [ws.path('drop'), ws.path('data')], warnings: [] });
    await master.start();
    expect(fs.statSync(ws.path('drop')).isDirectory()).toBe(true);
    expect(checkWatchedPaths(master.config).warnings).toEqual([`${ws.path('data/a.csv')} does not exist yet; it is uploaded once it exists and is notified`]);
  });

  it('refuses a drop folder that is a file', () => {
    ws = createWorkspace();
    ws.write('drop', 'not a folder');
    const m = new TaskMaster(testConfig({ watch: [{ dir: 'drop' }] }), { cwd: ws.dir });
    expect(checkWatchedPaths(m.config).problems).toEqual([`watch.0.dir: ${ws.path('drop')} is not a folder`]);
  });
});
