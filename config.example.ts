/**
 * Example pushtask configuration. Copy it (e.g. to pushtask.config.ts), edit it, and run
 *   pushtask watch --config pushtask.config.ts
 * Relative paths are relative to this file's folder. Every field except `watch` is optional; the
 * values below are the defaults unless a comment says otherwise.
 *
 * In your own project import from the package instead: `import { defineConfig } from 'pushtask'`.
 */
import { defineConfig } from './src/index.js';

export default defineConfig({
  // What to deliver: data files (uploaded on notify) and drop folders (every file that appears).
  watch: [
    // Plain: every notify is passed on. Lands at <remote>/test1.mrk.
    // `create: true` creates the folder at start; without it a missing folder is an error (a typo).
    { file: 'logs/test1.mrk', create: true },
    // Burst mode holds back notifies that come in quick runs and sends them together.
    // `true` uses pysubtask's settings; this spells them out.
    { file: 'logs/test1.csv', burstMode: { startTriggerMs: 1000, startTriggerCount: 2, expireMs: 5000 } },
    // A drop folder: files keep their path relative to the folder, once their size is stable.
    // afterUpload: 'keep' (default), 'delete' or { moveTo: 'sent' } once the server has a file;
    // include / exclude: glob patterns (a pattern without '/' matches the file name anywhere).
    { dir: 'logs/watch_all_in_here', recursive: true, stableMs: 1000, create: true, afterUpload: 'keep', exclude: ['*.bak'] },
  ],

  // Where files go. `local` copies into a folder (temp name + rename); sftp, ftp and dropbox follow.
  transport: { type: 'local', dir: 'remote' }, // default: { type: 'local', dir: 'outbox' }

  // Sidecar poll interval; file-system events usually see a notify within milliseconds.
  intervalMs: 2000,
  // Close the connection after this long without notifies, heartbeats or uploads.
  deadTimeMs: 180_000,
  // Flush data held back by burst mode automatically once its burst expires.
  autoFlush: true,
  // stop({ forceKill: false }) waits this long for the upload in flight, then kills the subtask.
  gracefulTimeoutMs: 10_000,
  // Timeout of every single transport operation (connect, upload, rename).
  operationTimeoutMs: 30_000,
  // Snapshots waiting for upload, and the agent's state. Default: '<first watched folder>/upload/<type>'.
  // spoolDir: 'logs/upload/local',

  // A `<name>.heartbeat` file uploaded every intervalSec, so a server can tell a client is alive.
  heartbeat: { intervalSec: 0 /* 0 = off */, name: 'logger-7' /* default: the host name */ },
  // At start, files older than afterDays (by mtime) move to <folder>/<toFolder>/YYYYMM/DD/.
  archive: { afterDays: 3, toFolder: 'archive' },
  // Failed connects/uploads: quickTries tries quickDelayMs apart, then longDelayMs, until stopped.
  retry: { strategy: 'pysubtask', quickTries: 5, quickDelayMs: 3000, longDelayMs: 30_000 },
  // Log files logs/pushtask-master.log and logs/pushtask-subtask.log, plus console lines.
  log: { dir: 'logs', level: 'info', console: true },
});
