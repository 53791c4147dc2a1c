/** config.example.ts and the demo's zero-setup config are valid configs. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfigFile, resolveConfig } from '../../src/config/index.js';
import { DEMO_CSV_HEADER, demoConfig, demoDir, demoSpoolDir, prepareDemoDir } from '../../src/cli/demoConfig.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('config.example.ts', () => {
  it('loads at run time and validates, paths relative to its folder', async () => {
    const loaded = await loadConfigFile(path.join(ROOT, 'config.example.ts'));
    expect(loaded.cwd).toBe(path.resolve(ROOT));
    expect(loaded.resolved.watch.map((entry) => [entry.kind, entry.path])).toEqual([
      ['file', path.join(ROOT, 'logs/test1.mrk')],
      ['file', path.join(ROOT, 'logs/test1.csv')],
      ['dir', path.join(ROOT, 'logs/watch_all_in_here')],
    ]);
    expect(loaded.resolved.transport).toEqual({ type: 'local', dir: path.join(ROOT, 'remote') });
  }, 60_000); // jiti transpiles the whole src/ tree the example imports
});

describe('the demo config', () => {
  let cwd: string;
  beforeEach(() => {
    cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-democfg-'));
  });
  afterEach(() => {
    fs.rmSync(cwd, { recursive: true, force: true });
  });

  it("validates, with pysubtask's watch list inside ./demo-run", () => {
    const dir = demoDir(cwd);
    expect(dir).toBe(path.join(cwd, 'demo-run'));
    const server = { port: 2222, hostKeyFingerprint: 'SHA256:abc', username: 'demo', password: 'pw' };
    const resolved = resolveConfig(demoConfig(server), { cwd: dir });
    expect(resolved.watch).toMatchObject([
      { kind: 'file', path: path.join(dir, 'logs/test1.mrk'), burst: null },
      { kind: 'file', path: path.join(dir, 'logs/test1.csv'), burst: { startTriggerMs: 1000, startTriggerCount: 2, expireMs: 5000 } },
      { kind: 'dir', path: path.join(dir, 'logs/watch_all_in_here') },
    ]);
    expect(resolved.transport).toMatchObject({ type: 'sftp', host: '127.0.0.1', port: 2222, username: 'demo', hostKey: 'SHA256:abc' });
    expect(resolved.log).toMatchObject({ console: false, masterFile: path.join(dir, 'logs/pushtask-master.log') });
    expect(demoSpoolDir(cwd)).toBe(resolved.spoolDir);
    expect(resolved.spoolDir.startsWith(dir + path.sep)).toBe(true);
  });

  it('creates the data files and drop folder, and keeps data of an earlier run', () => {
    const dir = demoDir(cwd);
    prepareDemoDir(dir);
    expect(fs.readFileSync(path.join(dir, 'logs/test1.csv'), 'utf8')).toBe(DEMO_CSV_HEADER);
    expect(fs.readFileSync(path.join(dir, 'logs/test1.mrk'), 'utf8')).toBe('');
    expect(fs.statSync(path.join(dir, 'logs/watch_all_in_here')).isDirectory()).toBe(true);

    fs.appendFileSync(path.join(dir, 'logs/test1.csv'), 'x,1\n');
    prepareDemoDir(dir);
    expect(fs.readFileSync(path.join(dir, 'logs/test1.csv'), 'utf8')).toBe(`${DEMO_CSV_HEADER}x,1\n`);
  });
});
