/**
 * Hostile inputs shared by the hostile-* tests: file names a drop folder may hold, and helpers
 * that prove nothing was written outside the destination and the agent never crash-looped.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { TaskMaster } from '../../src/index.js';
import type { SubtaskExitEvent } from '../../src/master/events.js';

/** 85 three-byte characters: a 255-byte name (the Linux limit) that is only 85 characters long. */
const CJK_255 = '日本語'.repeat(28) + '語';
/** 63 four-byte characters (252 bytes). */
const EMOJI_252 = '😀'.repeat(63);

/**
 * Drop-folder paths (relative, '/'-separated) that every transport must deliver under the same
 * relative path: leading dashes, control characters, dots that are not `..`, unicode in both
 * normal forms (two different files on Linux), names at the 255-byte limit, shell syntax.
 */
export const DELIVERABLE_NAMES: readonly string[] = [
  '-rf',
  '--help.txt',
  '-',
  'tab\tand  spaces .txt',
  'foo..',
  'x..y',
  ' leading-space.txt',
  'café.txt'.normalize('NFC'),
  'café.txt'.normalize('NFD'),
  'a'.repeat(255),
  CJK_255,
  EMOJI_252,
  '$(touch pwned);rm -rf ~ `id` *?[a].txt',
  '%2e%2e%2fescape.txt',
  "quote'double\"back`.txt",
  'sub/-dir/x../deep.txt',
  `${'d'.repeat(255)}/${'e'.repeat(255)}`,
];

/** Dot names (`..foo`, `...`, a `..x` folder) are ignored like every dot file: never uploaded, no error. */
export const IGNORED_NAMES: readonly string[] = ['..foo', '...', '..x/inside-dot-folder.txt'];

/** Names with CR or LF: fine for local folders and SFTP, not representable in FTP commands. */
export const CONTROL_CHAR_NAMES: readonly string[] = ['line\nbreak.txt', 'carriage\rreturn.txt', 'ends-with-newline\n'];

/**
 * Names pushtask refuses for every transport: a backslash path that climbs out on a Windows
 * server (`..\x`). Linux allows such names; a server that treats `\` as a separator would write
 * outside remoteDir.
 */
export const REFUSED_NAMES: readonly string[] = ['x\\..\\..\\up.txt', 'sub/back\\..\\..\\..\\slash.txt'];

/** Deterministic, name-specific content (so a file delivered under the wrong name is caught). */
export function contentFor(name: string): Buffer {
  return Buffer.from(`content of ${JSON.stringify(name)}\n`);
}

/** Every file (not folder) under `dir`, relative, '/'-separated, sorted. */
export function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => !entry.isDirectory())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .sort();
}

/** Watches a master for crash loops: the subtask pid must not change and it must never exit. */
export function crashWatch(master: TaskMaster): { exits: SubtaskExitEvent[]; pid: number | undefined; assertStable: () => void } {
  const exits: SubtaskExitEvent[] = [];
  master.on('subtask-exit', (e) => exits.push(e));
  const watch = {
    exits,
    pid: master.subtaskPid,
    assertStable() {
      if (exits.length) throw new Error(`the subtask exited: ${JSON.stringify(exits)}`);
      if (watch.pid !== undefined && master.subtaskPid !== watch.pid) {
        throw new Error(`the subtask pid changed from ${watch.pid} to ${master.subtaskPid}`);
      }
    },
  };
  return watch;
}

/** Parsed JSON lines of a pino log file (missing file: none). */
export function logRecords(file: string): { level: number; msg: string }[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { level: number; msg: string });
}
