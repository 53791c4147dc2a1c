/**
 * The zero-setup demo: pysubtask's demo files and watch list, delivered by the local transport
 * into a folder next to them, all inside `./demo-run/` so the demo never touches anything else.
 */
import fs from 'node:fs';
import path from 'node:path';
import { defineConfig, resolveConfig } from '../config/resolve.js';
import type { PushtaskConfig } from '../config/schema.js';

export const DEMO_DIR_NAME = 'demo-run';

/** Header of the demo CSV; each notify command appends `timestamp,counter`. */
export const DEMO_CSV_HEADER = 'timestamp,counter\n';

/** The demo's folder under the working directory; the config's relative paths start here. */
export function demoDir(cwd: string): string {
  return path.join(cwd, DEMO_DIR_NAME);
}

/** pysubtask's demo watch list; paths are relative to `demoDir()`. */
export function demoConfig(): PushtaskConfig {
  return defineConfig({
    watch: [
      { file: 'logs/test1.mrk' }, // plain: every notify is passed on
      { file: 'logs/test1.csv', burstMode: true }, // quick notifies are held back and sent together
      { dir: 'logs/watch_all_in_here' }, // drop folder: copy any file in
    ],
    transport: { type: 'local', dir: 'remote' },
    // Shorter than the default 180 s so a demo session shows the disconnect and the reconnect.
    deadTimeMs: 30_000,
    // The REPL prints its own event lines; the full logs go to logs/pushtask-*.log.
    log: { dir: 'logs', console: false },
  });
}

export function demoSpoolDir(cwd: string): string {
  return resolveConfig(demoConfig(), { cwd: demoDir(cwd) }).spoolDir;
}

/** Creates the demo's data files and drop folder; existing files are kept (a later run appends). */
export function prepareDemoDir(dir: string): void {
  const logs = path.join(dir, 'logs');
  fs.mkdirSync(path.join(logs, 'watch_all_in_here'), { recursive: true });
  const create = (file: string, content: string) => {
    // 'wx' fails when the file exists: data from earlier runs stays and is delivered as residual.
    try {
      fs.writeFileSync(path.join(logs, file), content, { flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  };
  create('test1.mrk', '');
  create('test1.csv', DEMO_CSV_HEADER);
}
