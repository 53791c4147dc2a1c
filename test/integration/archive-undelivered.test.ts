/**
 * Archival never strands data (issue 13): an expired file moves to the archive only when the
 * ledger says its current content was delivered. Real files, real agent, local transport.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskMaster } from '../../src/index.js';
import { resolveConfig } from '../../src/config/resolve.js';
import { createWorkspace, filesUnder, sameBytes, testConfig, waitFor, type Workspace } from '../helpers/workspace.js';

let ws: Workspace;
let master: TaskMaster | null = null;

afterEach(async () => {
  await master?.stop();
  master = null;
  ws?.cleanup();
});

const FIVE_DAYS_AGO = new Date(Date.now() - 5 * 86_400_000);

function writeOld(relative: string, content: string): string {
  const file = ws.write(relative, content);
  fs.utimesSync(file, FIVE_DAYS_AGO, FIVE_DAYS_AGO);
  return file;
}


async function runOnce(config: Parameters<typeof testConfig>[0], until: () => boolean, what: string): Promise<void> {
  master = new TaskMaster(testConfig(config), { cwd: ws.dir });
  await master.start();
  await waitFor(until, what);
  await master.stop({ forceKill: false });
  master = null;
}

describe('archival at start', () => {
  it('delivers a watched file last changed five days ago instead of archiving it, and archives it at the next start', async () => {
    ws = createWorkspace();
    const log = writeOld('data/log.csv', 'time,value\n1,2\n');
    const config = { watch: [{ file: 'data/log.csv' }] };

    await runOnce(config, () => sameBytes(log, ws.path('remote/log.csv')), 'the old file delivered');
    expect(fs.existsSync(log)).toBe(true); // not moved out of reach before its delivery
    expect(filesUnder(ws.path('data/archive'))).toEqual([]);

    // Delivered now: the next start archives it (dated by its mtime), and the server keeps its copy.
    master = new TaskMaster(testConfig(config), { cwd: ws.dir });
    await master.start();
    const yyyymm = `${FIVE_DAYS_AGO.getFullYear()}${String(FIVE_DAYS_AGO.getMonth() + 1).padStart(2, '0')}`;
    const dd = String(FIVE_DAYS_AGO.getDate()).padStart(2, '0');
    expect(filesUnder(ws.path('data/archive'))).toEqual([path.join(yyyymm, dd, 'log.csv')]);
    expect(fs.existsSync(log)).toBe(false);
    expect(fs.readFileSync(ws.path('remote/log.csv'), 'utf8')).toBe('time,value\n1,2\n');
  });

  it('delivers an old undelivered drop-folder file first; a delivered one that changed since is not archived either', async () => {
    ws = createWorkspace();
    const fresh = writeOld('drop/never-sent.csv', 'a\n');
    const config = { watch: [{ dir: 'drop' }] };
    await runOnce(config, () => sameBytes(fresh, ws.path('remote/never-sent.csv')), 'the old drop-folder file delivered');
    expect(fs.existsSync(fresh)).toBe(true);

    // Changed after its delivery (and still old): its current content is not on the server.
    fs.writeFileSync(fresh, 'a\nb\n');
    fs.utimesSync(fresh, FIVE_DAYS_AGO, new Date(FIVE_DAYS_AGO.getTime() + 1000));
    await runOnce(config, () => sameBytes(fresh, ws.path('remote/never-sent.csv')), 'the changed file delivered');
    expect(fs.existsSync(fresh)).toBe(true);

    master = new TaskMaster(testConfig(config), { cwd: ws.dir });
    await master.start();
    expect(fs.existsSync(fresh)).toBe(false);
    expect(filesUnder(ws.path('drop/archive'))).toHaveLength(1);
    expect(fs.readFileSync(ws.path('remote/never-sent.csv'), 'utf8')).toBe('a\nb\n');
  });

  it('archives nothing with `archive: false`, delivered or not', async () => {
    ws = createWorkspace();
    const log = writeOld('data/log.csv', 'x\n');
    const config = { watch: [{ file: 'data/log.csv' }], archive: false as const };
    await runOnce(config, () => sameBytes(log, ws.path('remote/log.csv')), 'delivery');
    master = new TaskMaster(testConfig(config), { cwd: ws.dir });
    await master.start();
    expect(fs.existsSync(log)).toBe(true);
    expect(fs.existsSync(ws.path('data/archive'))).toBe(false);
  });

  it('refuses archive settings that make no sense', () => {
    ws = createWorkspace();
    const resolve = (archive: unknown) => () => resolveConfig({ watch: [{ dir: 'drop' }], archive }, { cwd: ws.dir });
    expect(resolve({ afterDays: 0 })).toThrow(/archive\.afterDays: Too small: expected number to be >0; given 0/);
    expect(resolve({ afterDays: -1 })).toThrow(/archive\.afterDays/);
    expect(resolve({ afterDays: Infinity })).toThrow(/archive\.afterDays/);
    expect(resolve(true)).toThrow(/archive/);
    expect(resolveConfig({ watch: [{ dir: 'drop' }], archive: false }, { cwd: ws.dir }).archive.enabled).toBe(false);
  });
});
