/**
 * The configuration schema: the single source of truth for field names, types and defaults.
 * README's configuration reference is checked against it by test/unit/config-reference.test.ts.
 */
import { z } from 'zod';

const positiveInt = () => z.number().int().positive();
const nonNegativeInt = () => z.number().int().nonnegative();

export const BURST_DEFAULTS = { startTriggerMs: 1000, startTriggerCount: 2, expireMs: 5000 } as const;

export const burstSchema = z
  .object({
    /** A notify closer than this to the previous one counts towards a burst. @default 1000 */
    startTriggerMs: positiveInt().default(BURST_DEFAULTS.startTriggerMs),
    /** How many quick notifies in a row start a burst. @default 2 */
    startTriggerCount: positiveInt().default(BURST_DEFAULTS.startTriggerCount),
    /** A burst is released after this long even if it goes on. @default 5000 */
    expireMs: positiveInt().default(BURST_DEFAULTS.expireMs),
  })
  .strict();

const modeSchema = z.enum(['replace', 'append']).default('replace');

export const watchFileSchema = z
  .object({
    /** A data file; every notify snapshots it and uploads it to `<remoteDir>/<basename>`. */
    file: z.string().min(1),
    /** Hold back notifies that come in bursts (pysubtask's algorithm). @default false */
    burstMode: z.union([z.boolean(), burstSchema.partial()]).default(false),
    /** `replace` uploads the whole file; `append` only the new bytes (SPEC §7). @default 'replace' */
    mode: modeSchema,
  })
  .strict();

export const watchDirSchema = z
  .object({
    /** A drop folder: every regular file that appears in it is uploaded once its size is stable. */
    dir: z.string().min(1),
    /** Also watch sub-folders (their relative path is kept remotely). @default true */
    recursive: z.boolean().default(true),
    /** A file is uploaded once its size and mtime have not changed for this long. @default 1000 */
    stableMs: nonNegativeInt().default(1000),
    /** Poll instead of using inotify (network shares). @default false */
    usePolling: z.boolean().default(false),
    /** Follow symbolic links that point outside the folder. @default false */
    followSymlinks: z.boolean().default(false),
    /** See watch file `mode`. @default 'replace' */
    mode: modeSchema,
  })
  .strict();

export const watchEntrySchema = z.union([watchFileSchema, watchDirSchema]);

export const localTransportSchema = z
  .object({
    type: z.literal('local'),
    /** Destination folder (created when missing). */
    dir: z.string().min(1),
  })
  .strict();

/** Each transport adds its schema here; the `type` field selects it. */
export const transportSchema = z.discriminatedUnion('type', [localTransportSchema]);

export const retrySchema = z
  .object({
    /** `pysubtask`: quick tries then a long wait, repeated; `exponential`: doubling with jitter. @default 'pysubtask' */
    strategy: z.enum(['pysubtask', 'exponential']).default('pysubtask'),
    /** Quick tries before a long wait. @default 5 */
    quickTries: positiveInt().default(5),
    /** Wait between quick tries. @default 3000 */
    quickDelayMs: nonNegativeInt().default(3000),
    /** Wait after a set of quick tries failed (and after auth/host-key errors). @default 30000 */
    longDelayMs: nonNegativeInt().default(30_000),
    /** Upper bound of the exponential strategy. @default 300000 */
    maxDelayMs: positiveInt().default(300_000),
  })
  .strict();

export const heartbeatSchema = z
  .object({
    /** Seconds between heartbeats; 0 turns them off. @default 0 */
    intervalSec: nonNegativeInt().default(0),
    /** Heartbeat file name (without `.heartbeat`). @default the host name */
    name: z.string().min(1).optional(),
  })
  .strict();

export const archiveSchema = z
  .object({
    /** Files older than this many days (by mtime) are archived at start. @default 3 */
    afterDays: z.number().nonnegative().default(3),
    /** Archive folder, relative to each data folder. @default 'archive' */
    toFolder: z.string().min(1).default('archive'),
  })
  .strict();

export const logSchema = z
  .object({
    /** Folder of the log files, relative to the working directory. @default 'logs' */
    dir: z.string().min(1).default('logs'),
    /** trace, debug, info, warn, error, fatal or silent. @default 'info' */
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    /** Also log human-readable lines to the console. @default true */
    console: z.boolean().default(true),
  })
  .strict();

export const configSchema = z
  .object({
    /** Data files and drop folders to deliver. At least one. */
    watch: z.array(watchEntrySchema).min(1),
    /** Where files go. @default { type: 'local', dir: 'outbox' } */
    transport: transportSchema.default({ type: 'local', dir: 'outbox' }),
    /** Sidecar poll interval; the file-system watch usually sees notifies much sooner. @default 2000 */
    intervalMs: z.number().int().min(10).default(2000),
    /** Idle time after which the connection is closed. @default 180000 */
    deadTimeMs: nonNegativeInt().default(180_000),
    /** See notifies at once through file-system events; false polls sidecars only (some network shares). @default true */
    fsEvents: z.boolean().default(true),
    /** Flush data held back by burst mode automatically when its burst expires. @default true */
    autoFlush: z.boolean().default(true),
    /** How long `stop({ forceKill: false })` waits for the upload in flight. @default 10000 */
    gracefulTimeoutMs: nonNegativeInt().default(10_000),
    /** Timeout of every single transport operation (connect, upload, rename). @default 30000 */
    operationTimeoutMs: positiveInt().default(30_000),
    /** Spool folder for snapshots and state. @default '<first watched folder>/upload/<transport type>' */
    spoolDir: z.string().min(1).optional(),
    heartbeat: heartbeatSchema.default({ intervalSec: 0 }),
    archive: archiveSchema.default({ afterDays: 3, toFolder: 'archive' }),
    retry: retrySchema.default({
      strategy: 'pysubtask',
      quickTries: 5,
      quickDelayMs: 3000,
      longDelayMs: 30_000,
      maxDelayMs: 300_000,
    }),
    log: logSchema.default({ dir: 'logs', level: 'info', console: true }),
  })
  .strict();

/** What a user writes (defaults optional). */
export type PushtaskConfig = z.input<typeof configSchema>;
/** After validation, with defaults filled in (paths still as written). */
export type ParsedConfig = z.output<typeof configSchema>;
export type TransportConfig = z.output<typeof transportSchema>;
export type LocalTransportConfig = z.output<typeof localTransportSchema>;
export type RetryConfig = z.output<typeof retrySchema>;
export type BurstSettings = z.output<typeof burstSchema>;
export type LogLevel = z.output<typeof logSchema>['level'];
