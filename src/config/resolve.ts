/**
 * Validates a user config and normalises it once into the fully-resolved form that master and
 * subtask share: absolute paths, burst settings filled in, spool and log locations decided.
 */
import os from 'node:os';
import path from 'node:path';
import type { z } from 'zod';
import { PushtaskError } from '../shared/errors.js';
import { isSecretKey } from '../shared/secrets.js';
import {
  ARCHIVE_DEFAULTS,
  BURST_DEFAULTS,
  configSchema,
  type BurstSettings,
  type LogLevel,
  type PushtaskConfig,
  type LinkConfig,
  type RetryConfig,
  type TransportConfig,
} from './schema.js';

export type WriteMode = 'replace' | 'append';

export interface ResolvedWatchFile {
  kind: 'file';
  index: number;
  /** Absolute path of the data file. */
  path: string;
  mode: WriteMode;
  burst: BurstSettings | null;
  /** Create the file's folder at start when missing. */
  create: boolean;
}

/** What a drop folder does with a file once the server confirmed it. */
export type AfterUpload = { kind: 'keep' } | { kind: 'delete' } | { kind: 'move'; dir: string };

export interface ResolvedWatchDir {
  kind: 'dir';
  index: number;
  /** Absolute path of the drop folder. */
  path: string;
  mode: WriteMode;
  recursive: boolean;
  stableMs: number;
  usePolling: boolean;
  followSymlinks: boolean;
  /** Create the drop folder at start when missing. */
  create: boolean;
  afterUpload: AfterUpload;
  /** Glob patterns (picomatch) a file must match; null: every file. */
  include: string[] | null;
  exclude: string[];
}

export type ResolvedWatch = ResolvedWatchFile | ResolvedWatchDir;

export interface ResolvedConfig {
  watch: ResolvedWatch[];
  transport: TransportConfig;
  intervalMs: number;
  fsEvents: boolean;
  deadTimeMs: number;
  autoFlush: boolean;
  gracefulTimeoutMs: number;
  operationTimeoutMs: number;
  /** `bandwidthLimit` as written (checked by the schema); the agent builds its limiter from it. */
  bandwidthLimit?: number | string;
  link: LinkConfig;
  /** Folder of the first watch entry: heartbeat files and archival start here. */
  dataDir: string;
  spoolDir: string;
  heartbeat: { intervalSec: number; name: string };
  /** `enabled: false` (config `archive: false`) archives nothing; `toFolder` stays out of drop-folder scans either way. */
  archive: { enabled: boolean; afterDays: number; toFolder: string };
  retry: RetryConfig;
  log: { level: LogLevel; console: boolean; masterFile: string; subtaskFile: string; rotation: { maxBytes: number; keep: number } };
}

export { defineConfig } from './define.js';

export class ConfigError extends PushtaskError {
  readonly problems: string[];
  constructor(problems: string[], source?: string) {
    const where = source ? ` in ${source}` : '';
    super('CONFIG_INVALID', `Invalid pushtask configuration${where}:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

function describeGiven(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return `an object with keys ${Object.keys(value as object).join(', ') || '(none)'}`;
}

/**
 * A watch entry is a union of `{ file }` and `{ dir }`: when the entry clearly meant one of them,
 * report that branch's own problems (e.g. `watch.0.file: expected string; given 42`). Other
 * unions (`burstMode: true | { … }`): when the value had the right type for exactly one branch and
 * only a field inside it is wrong, report that field (`watch.0.burstMode.expireMs: …`), not the
 * union ("expected boolean or number" would name the wrong field's type as the union's).
 */
function expandIssue(issue: z.core.$ZodIssue): z.core.$ZodIssue[] {
  if (issue.code !== 'invalid_union') return [issue];
  if (issue.path.length !== 2 || issue.path[0] !== 'watch') {
    const deeper = issue.errors.filter((branch) => branch.length > 0 && branch.every((inner) => inner.path.length > 0));
    if (deeper.length !== 1) return [issue];
    return deeper[0]!.flatMap((inner) => expandIssue({ ...inner, path: [...issue.path, ...inner.path] }));
  }
  const input = issue.input;
  if (!input || typeof input !== 'object' || Array.isArray(input)) return [issue];
  const hasFile = 'file' in input;
  if (hasFile === 'dir' in input) return [issue];
  const branch = issue.errors[hasFile ? 0 : 1] ?? [];
  return branch.length ? branch.flatMap((inner) => expandIssue({ ...inner, path: [...issue.path, ...inner.path] })) : [issue];
}

function formatIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.length ? issue.path.map(String).join('.') : '(config)';
  const secret = issue.path.some((key) => typeof key === 'string' && isSecretKey(key));
  // A discriminated union reports the whole object as input: show the discriminator's value.
  const input =
    issue.code === 'invalid_union' && issue.discriminator && issue.input && typeof issue.input === 'object'
      ? (issue.input as Record<string, unknown>)[issue.discriminator]
      : issue.input;
  const given = 'input' in issue && !secret ? `; given ${describeGiven(input)}` : '';
  if (issue.code === 'unrecognized_keys') {
    return `${where}: unknown field(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')} (check the spelling)`;
  }
  if (issue.code === 'invalid_union' && issue.path.length === 2 && issue.path[0] === 'watch') {
    return `${where}: expected { file: "path" } or { dir: "path" } with their options${given}`;
  }
  if (issue.code === 'invalid_union' && !issue.discriminator) {
    // e.g. burstMode: true/false or an object; name the accepted types instead of "Invalid input".
    const expected = issue.errors.map((branch) => (branch.length === 1 && branch[0]!.code === 'invalid_type' ? branch[0]!.expected : null));
    if (expected.length && expected.every((type) => type !== null)) return `${where}: expected ${expected.join(' or ')}${given}`;
  }
  return `${where}: ${issue.message}${given}`;
}

/**
 * `password: process.env.PW` with PW unset is a field that is there but empty: say so, naming the
 * field, instead of letting the server refuse the login later ("login refused" said nothing about
 * a credential that was never configured). Checked on the input: validation cannot tell a field
 * set to undefined from one left out.
 */
function emptySecretProblems(input: unknown): string[] {
  const transport = isRecord(input) ? input.transport : undefined;
  if (!isRecord(transport) || transport.type === 'local') return [];
  return Object.entries(transport)
    .filter(([key, value]) => isSecretKey(key) && (value === undefined || (typeof value === 'string' && value.trim() === '')))
    .map(
      ([key, value]) =>
        `transport.${key}: is empty (${value === undefined ? 'undefined' : 'an empty string'}); if it is read from an environment variable (process.env.…), that variable is not set where pushtask runs`,
    );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export interface ResolveOptions {
  /** Base for relative paths. @default process.cwd() */
  cwd?: string;
  /** Named in error messages (a config file's path). */
  source?: string;
}

export function resolveConfig(input: unknown, options: ResolveOptions = {}): ResolvedConfig {
  const parsed = configSchema.safeParse(input, { reportInput: true });
  const empty = emptySecretProblems(input);
  if (!parsed.success) {
    throw new ConfigError([...empty, ...parsed.error.issues.flatMap(expandIssue).map(formatIssue)], options.source);
  }
  const config = parsed.data;
  const noCredential = config.transport.type === 'sftp' && !config.transport.password && !config.transport.privateKey && !config.transport.agent;
  if (empty.length || noCredential) {
    throw new ConfigError(
      empty.length ? empty : ['transport: an sftp login needs `password`, `privateKey` or `agent`; none is set'],
      options.source,
    );
  }
  const cwd = options.cwd ?? process.cwd();
  const abs = (p: string) => path.resolve(cwd, p);

  const watch: ResolvedWatch[] = config.watch.map((entry, index) => {
    if ('file' in entry) {
      const burst = entry.burstMode === false ? null : { ...BURST_DEFAULTS, ...(entry.burstMode === true ? {} : entry.burstMode) };
      return { kind: 'file', index, path: abs(entry.file), mode: entry.mode, burst, create: entry.create };
    }
    const dir = abs(entry.dir);
    const afterUpload: AfterUpload =
      typeof entry.afterUpload === 'object' ? { kind: 'move', dir: path.resolve(dir, entry.afterUpload.moveTo) } : { kind: entry.afterUpload };
    return {
      kind: 'dir',
      index,
      path: dir,
      create: entry.create,
      afterUpload,
      include: entry.include ?? null,
      exclude: entry.exclude,
      mode: entry.mode,
      recursive: entry.recursive,
      stableMs: entry.stableMs,
      usePolling: entry.usePolling,
      followSymlinks: entry.followSymlinks,
    };
  });

  const problems: string[] = [];
  const seen = new Map<string, number>();
  for (const entry of watch) {
    const previous = seen.get(entry.path);
    if (previous !== undefined) problems.push(`watch.${entry.index}: ${entry.path} is already watch.${previous}`);
    seen.set(entry.path, entry.index);
  }
  if (problems.length) throw new ConfigError(problems, options.source);

  const first = watch[0]!;
  const dataDir = first.kind === 'file' ? path.dirname(first.path) : first.path;
  const transport = resolveTransportPaths(config.transport, abs);
  const logDir = abs(config.log.dir);
  const spoolDir = config.spoolDir ? abs(config.spoolDir) : path.join(dataDir, 'upload', transport.type);
  const archive = config.archive === false ? { enabled: false, ...ARCHIVE_DEFAULTS } : { enabled: true, ...config.archive };
  problems.push(...placementProblems(watch, transport, { spoolDir, logDir, archive: archive.toFolder, heartbeat: config.heartbeat.name }));
  if (problems.length) throw new ConfigError(problems, options.source);

  return {
    watch,
    transport,
    intervalMs: config.intervalMs,
    fsEvents: config.fsEvents,
    deadTimeMs: config.deadTimeMs,
    autoFlush: config.autoFlush,
    gracefulTimeoutMs: config.gracefulTimeoutMs,
    operationTimeoutMs: config.operationTimeoutMs,
    ...(config.bandwidthLimit === undefined ? {} : { bandwidthLimit: config.bandwidthLimit }),
    link: config.link,
    dataDir,
    spoolDir,
    heartbeat: { intervalSec: config.heartbeat.intervalSec, name: config.heartbeat.name ?? os.hostname() },
    archive,
    retry: config.retry,
    log: {
      level: config.log.level,
      console: config.log.console,
      masterFile: path.join(logDir, 'pushtask-master.log'),
      subtaskFile: path.join(logDir, 'pushtask-subtask.log'),
      rotation: { maxBytes: config.log.maxBytes, keep: config.log.keepFiles },
    },
  };
}

const isWithin = (inner: string, outer: string) => inner === outer || inner.startsWith(outer.endsWith(path.sep) ? outer : outer + path.sep);

/**
 * Settings that are each valid but together would lose data or loop forever: a local destination
 * inside a drop folder (every delivered file is dropped again: out/out/out/…), a destination that
 * would replace a watched file with its own copy (the writer's open handle then writes into a
 * deleted file), a spool or log folder that is a drop folder (snapshots or log lines would be
 * uploaded, each upload changing them again), and archive or heartbeat names that climb out.
 */
function placementProblems(
  watch: readonly ResolvedWatch[],
  transport: TransportConfig,
  names: { spoolDir: string; logDir: string; archive: string; heartbeat: string | undefined },
): string[] {
  const problems: string[] = [];
  for (const entry of watch) {
    if (transport.type === 'local') {
      if (entry.kind === 'dir' && isWithin(transport.dir, entry.path)) {
        problems.push(`transport.dir: ${transport.dir} is inside the drop folder of watch.${entry.index} (${entry.path}): every delivered file would be picked up and delivered again, forever`);
      }
      if (entry.kind === 'file' && path.join(transport.dir, path.basename(entry.path)) === entry.path) {
        problems.push(`transport.dir: ${transport.dir} holds watch.${entry.index} (${entry.path}) itself: delivering it would replace the file with its own copy`);
      }
    }
    if (entry.kind !== 'dir') continue;
    if (entry.afterUpload.kind === 'move') {
      const target = entry.afterUpload.dir;
      if (isWithin(entry.path, target)) {
        problems.push(`watch.${entry.index}.afterUpload.moveTo: ${target} is the drop folder or holds it; expected a folder such as "sent"`);
      }
      for (const other of watch) {
        if (other !== entry && other.kind === 'dir' && isWithin(target, other.path)) {
          problems.push(`watch.${entry.index}.afterUpload.moveTo: ${target} is inside the drop folder of watch.${other.index} (${other.path}): moved files would be delivered again`);
        }
      }
    }
    if (names.spoolDir === entry.path) problems.push(`spoolDir: ${names.spoolDir} is the drop folder of watch.${entry.index}: snapshots would be uploaded as data`);
    if (names.logDir === entry.path) problems.push(`log.dir: ${names.logDir} is the drop folder of watch.${entry.index}: every upload would log a line and upload the log again`);
  }
  const archiveParts = names.archive.split(/[\\/]+/).filter((part) => part !== '' && part !== '.');
  if (archiveParts.length === 0 || archiveParts.includes('..') || path.isAbsolute(names.archive)) {
    problems.push(`archive.toFolder: expected a sub-folder name such as "archive" (no "..", not absolute); given ${JSON.stringify(names.archive)}`);
  }
  const heartbeat = names.heartbeat;
  if (heartbeat !== undefined && (/[\\/\0]/.test(heartbeat) || heartbeat === '.' || heartbeat === '..')) {
    problems.push(`heartbeat.name: expected a file name without "/" or "\\"; given ${JSON.stringify(heartbeat)}`);
  }
  return problems;
}

/** Local file paths inside transport settings become absolute; key text stays as it is. */
function resolveTransportPaths(transport: TransportConfig, abs: (p: string) => string): TransportConfig {
  switch (transport.type) {
    case 'local':
      return { ...transport, dir: abs(transport.dir) };
    case 'sftp': {
      const isKeyText = transport.privateKey?.includes('-----BEGIN');
      return {
        ...transport,
        ...(transport.privateKey && !isKeyText ? { privateKey: abs(expandHome(transport.privateKey)) } : {}),
        ...(transport.knownHosts ? { knownHosts: abs(expandHome(transport.knownHosts)) } : {}),
      };
    }
    case 'ftp':
      return transport.tls.ca ? { ...transport, tls: { ...transport.tls, ca: abs(expandHome(transport.tls.ca)) } } : transport;
    case 'dropbox':
    case 's3':
      return transport;
  }
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}
