/**
 * The zero-setup demo: pysubtask's demo files and watch list, delivered over real SFTP to an
 * embedded server on 127.0.0.1 that stores into a folder next to them, all inside `./demo-run/`
 * so the demo never touches anything else.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { defineConfig, resolveConfig } from '../config/resolve.js';
import type { PushtaskConfig } from '../config/schema.js';
import { generateHostKey, startEmbeddedSftpServer, type EmbeddedSftpServer } from '../embedded/sftpServer.js';

export const DEMO_DIR_NAME = 'demo-run';

/** Header of the demo CSV; each notify command appends `timestamp,counter`. */
export const DEMO_CSV_HEADER = 'timestamp,counter\n';

/** The demo's folder under the working directory; the config's relative paths start here. */
export function demoDir(cwd: string): string {
  return path.join(cwd, DEMO_DIR_NAME);
}

/** How to reach the demo's SFTP server. */
export interface DemoServer {
  port: number;
  hostKeyFingerprint: string;
  username: string;
  password: string;
}

/** Stands in for the server where only the config's shape matters (the spool folder's name). */
const NO_SERVER: DemoServer = { port: 22, hostKeyFingerprint: 'SHA256:-', username: 'demo', password: 'no-server' };

/** pysubtask's demo watch list; paths are relative to `demoDir()`. */
export function demoConfig(server: DemoServer = NO_SERVER): PushtaskConfig {
  return defineConfig({
    watch: [
      { file: 'logs/test1.mrk' }, // plain: every notify is passed on
      { file: 'logs/test1.csv', burstMode: true }, // quick notifies are held back and sent together
      { dir: 'logs/watch_all_in_here' }, // drop folder: copy any file in
    ],
    transport: {
      type: 'sftp',
      host: '127.0.0.1',
      port: server.port,
      username: server.username,
      password: server.password,
      hostKey: server.hostKeyFingerprint, // the demo server's own key, pinned
      remoteDir: '.',
    },
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

export interface RunningDemoServer extends DemoServer {
  root: string;
  close(): Promise<void>;
}

/**
 * Starts the embedded SFTP server storing into `<dir>/remote`. Its host key is kept in
 * `<dir>/demo_host_key` so the fingerprint stays the same between runs; the password is new each run.
 */
export async function startDemoServer(dir: string): Promise<RunningDemoServer> {
  const root = path.join(dir, 'remote');
  const keyFile = path.join(dir, 'demo_host_key');
  const password = randomBytes(12).toString('base64url');
  if (!fs.existsSync(keyFile)) fs.writeFileSync(keyFile, generateHostKey(), { mode: 0o600 });
  const server: EmbeddedSftpServer = await startEmbeddedSftpServer({ root, username: 'demo', password, hostKey: fs.readFileSync(keyFile) });
  return { port: server.port, hostKeyFingerprint: server.hostKeyFingerprint, username: 'demo', password, root, close: () => server.close() };
}
