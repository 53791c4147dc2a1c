/**
 * `pushtask watch --dry-run`: the config is valid (loading it proved that), here is what would be
 * watched and where it would go, and the destination answers. Never uploads, never writes into
 * the spool: host keys that `hostKey: 'accept-new'` would pin go to a throw-away folder.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LoadedConfig } from '../config/load.js';
import type { ResolvedConfig } from '../config/resolve.js';
import { withTimeout } from '../shared/abort.js';
import { errorMessage } from '../shared/errors.js';
import { createLogger, silentLogger } from '../shared/logger.js';
import { collectSecrets, scrubSecrets } from '../shared/secrets.js';
import { HEARTBEAT_SUFFIX } from '../shared/sidecar.js';
import { checkWatchedPaths } from '../master/watchedPaths.js';
import { loadTransport } from '../transports/index.js';
import type { CliIO } from './command.js';
import { EXIT_FAILURE, EXIT_OK } from './errors.js';
import { describeTarget, formatBytes, shortPath } from './format.js';
import { pidAlive, readStatus } from './statusFormat.js';

export async function dryRun(loaded: LoadedConfig, io: CliIO, { debug }: { debug: boolean }): Promise<number> {
  const config = loaded.resolved;
  const base = loaded.cwd;
  const short = (file: string) => shortPath(file, base);
  const lines: string[] = [`pushtask watch --dry-run: ${loaded.file} is valid.`, 'Would watch:'];
  const paths = checkWatchedPaths(config);
  for (const entry of config.watch) {
    if (entry.kind === 'file') {
      lines.push(`  [${entry.index}] file ${short(entry.path)} (${describeFile(entry.path, entry.create)}) → ${path.basename(entry.path)}${entry.burst ? ', burst mode' : ''}`);
    } else {
      const outbox = entry.afterUpload.kind === 'keep' ? '' : entry.afterUpload.kind === 'delete' ? ', deleted once delivered' : `, moved to ${short(entry.afterUpload.dir)}/ once delivered`;
      lines.push(`  [${entry.index}] drop folder ${short(entry.path)}/ (${describeFolder(entry.path, entry.create)}) → <relative path>${entry.recursive ? ', with sub-folders' : ''}${outbox}`);
    }
  }
  lines.push(`Uploading to: ${describeTarget(config)}`);
  lines.push(`Spool:        ${short(config.spoolDir)} (${describeSpool(config.spoolDir)})`);
  lines.push(`Logs:         ${short(config.log.masterFile)}, ${short(config.log.subtaskFile)}${config.log.console ? ' and the console' : ''}`);
  lines.push(
    `Heartbeat:    ${config.heartbeat.intervalSec > 0 ? `${config.heartbeat.name}${HEARTBEAT_SUFFIX} every ${config.heartbeat.intervalSec} s` : 'off (heartbeat.intervalSec is 0)'}`,
  );
  io.out(`${lines.join('\n')}\n`);

  const ok = await tryConnection(config, io, debug);
  if (paths.problems.length) {
    io.err(`pushtask: the agent would not start:\n  - ${paths.problems.join('\n  - ')}\n`);
    return EXIT_FAILURE;
  }
  io.out(ok ? 'Nothing was written. Run the same command without --dry-run to start.\n' : '');
  return ok ? EXIT_OK : EXIT_FAILURE;
}

/** Connects once, lists the remote folder, closes. */
async function tryConnection(config: ResolvedConfig, io: CliIO, debug: boolean): Promise<boolean> {
  const secrets = collectSecrets(config);
  const logger = debug ? createLogger({ name: 'cli', level: 'debug', console: true, secrets }) : silentLogger();
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-dry-run-'));
  // Pins made earlier by `accept-new` count; new ones are thrown away with the folder.
  const pins = path.join(config.spoolDir, 'known_hosts');
  if (fs.existsSync(pins)) fs.copyFileSync(pins, path.join(stateDir, 'known_hosts'));
  const makeTransport = await loadTransport(config.transport, { logger, stateDir });
  const transport = makeTransport();
  const never = new AbortController().signal;
  const started = Date.now();
  try {
    // The local transport's connect() creates its folder: a dry run only looks (probe).
    if (!makeTransport.capabilities.probesUnconnected || !transport.probe) {
      io.out(`Connecting to ${transport.description} ... `);
      await withTimeout((signal) => transport.connect(signal), config.operationTimeoutMs, never, `Connecting to ${transport.description}`);
      io.out(`ok (${Date.now() - started} ms)\n`);
    }
    if (transport.probe) {
      const probe = await withTimeout((signal) => transport.probe!(signal), config.operationTimeoutMs, never, `Looking at the remote folder of ${transport.description}`);
      const folder =
        probe.folder === 'exists'
          ? `exists${probe.entries === undefined ? '' : `, ${probe.entries} entr${probe.entries === 1 ? 'y' : 'ies'}`}`
          : 'does not exist yet: it will be created by the first upload';
      io.out(`Remote folder: ${folder}\n`);
      const permission = probe.writable === null ? 'cannot be checked without writing' : probe.writable ? 'ok' : 'FAILED';
      io.out(`Write permission: ${permission} (${probe.detail})\n`);
      if (probe.writable === false) {
        io.err(`pushtask: ${transport.description} cannot be written to: ${probe.detail}\nThe agent would keep retrying this (see \`retry\` in the config); fix it, then run --dry-run again.\n`);
        return false;
      }
    } else if (transport.list) {
      try {
        const entries = await withTimeout((signal) => transport.list!('', signal), config.operationTimeoutMs, never, `Listing ${transport.description}`);
        io.out(`Remote folder: exists, ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}\n`);
      } catch (error) {
        // FTP answers 550, Dropbox `not_found`: the first upload creates the folder (the login worked).
        if (!/\b550\b|not_found|ENOENT|No such file/i.test(errorMessage(error))) throw error;
        io.out('Remote folder: does not exist yet: it will be created by the first upload\n');
      }
      if (!transport.checkWrite) io.out('Write permission: cannot be checked without writing over this protocol\n');
    }
    if (transport.checkWrite) {
      const proved = await withTimeout((signal) => transport.checkWrite!(signal), config.operationTimeoutMs, never, `Checking write permission at ${transport.description}`);
      io.out(`Write permission: ok (${proved})\n`);
    }
    return true;
  } catch (error) {
    const message = scrubSecrets(errorMessage(error), secrets);
    io.out('FAILED\n');
    io.err(`pushtask: ${message}\nThe agent would keep retrying this (see \`retry\` in the config); fix it, then run --dry-run again.\n`);
    return false;
  } finally {
    await transport.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

function describeFile(file: string, create: boolean): string {
  const stats = fs.statSync(file, { throwIfNoEntry: false });
  if (!stats && !fs.existsSync(path.dirname(file))) return create ? 'its folder does not exist: created at start' : 'its folder does NOT exist';
  if (!stats) return 'does not exist yet: uploaded once it appears and is notified';
  if (!stats.isFile()) return 'NOT a regular file';
  return `${formatBytes(stats.size)}`;
}

function describeFolder(dir: string, create: boolean): string {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return create ? 'does not exist: created at start' : 'does NOT exist';
    return `not readable: ${errorMessage(error)}`;
  }
  const count = names.filter((name) => !name.startsWith('.')).length;
  return `exists, ${count} entr${count === 1 ? 'y' : 'ies'}`;
}

function describeSpool(dir: string): string {
  if (!fs.existsSync(dir)) return 'created at start';
  try {
    const read = readStatus(dir);
    if (read.kind === 'missing') return 'exists';
    const { queue, running, pid } = read.status;
    const left = queue.length ? `the last run left ${queue.length} file(s), ${formatBytes(queue.bytes)} queued: uploaded first` : 'nothing queued';
    return running && pidAlive(pid) ? `${left}; an agent runs on it (pid ${pid}): a second one would refuse to start` : left;
  } catch {
    return 'exists';
  }
}
