/**
 * The configuration schema: the single source of truth for field names, types, defaults and
 * their descriptions. README's configuration reference is generated from it (`npm run docs`, with
 * an example per field from examples.ts); test/unit/readme.test.ts keeps the two in step.
 */
import { z } from 'zod';
import { parseBandwidthLimit } from '../shared/bandwidth.js';

const positiveInt = () => z.number().int().positive();
const nonNegativeInt = () => z.number().int().nonnegative();

export const BURST_DEFAULTS = { startTriggerMs: 1000, startTriggerCount: 2, expireMs: 5000 } as const;

export const burstSchema = z
  .object({
    startTriggerMs: positiveInt()
      .default(BURST_DEFAULTS.startTriggerMs)
      .describe('A notify closer than this (ms) to the previous one counts towards a burst.'),
    startTriggerCount: positiveInt()
      .default(BURST_DEFAULTS.startTriggerCount)
      .describe('How many quick notifies in a row start a burst.'),
    expireMs: positiveInt()
      .default(BURST_DEFAULTS.expireMs)
      .describe('A burst is released this long (ms) after it started, even if it goes on.'),
  })
  .strict();

const modeSchema = z
  .enum(['replace', 'append'])
  .default('replace')
  .describe("`replace` uploads the whole file; `append` only the bytes added since the last delivery (SPEC §7; Dropbox: whole files).");

export const watchFileSchema = z
  .object({
    file: z.string().min(1).describe('A data file. Each notify snapshots it and uploads it to `<remoteDir>/<basename>`.'),
    burstMode: z
      .union([z.boolean(), burstSchema.partial()])
      .default(false)
      .describe('Hold back notifies that come in bursts (pysubtask\'s algorithm): `true` for the defaults below, or an object overriding them.'),
    mode: modeSchema,
    create: z
      .boolean()
      .default(false)
      .describe("Create the file's folder at start when it is missing; otherwise a missing folder is an error (a typo would watch nothing)."),
  })
  .strict();

export const watchDirSchema = z
  .object({
    dir: z.string().min(1).describe('A drop folder: every regular file that appears in it is uploaded once its size is stable.'),
    recursive: z.boolean().default(true).describe('Also watch sub-folders; their relative path is kept remotely.'),
    stableMs: nonNegativeInt().default(1000).describe('A file is uploaded once its size and mtime have not changed for this long (ms).'),
    usePolling: z.boolean().default(false).describe('Poll the folder instead of using file-system events (network shares).'),
    followSymlinks: z.boolean().default(false).describe('Follow symbolic links (which may point outside the folder).'),
    mode: modeSchema,
    create: z.boolean().default(false).describe('Create the drop folder at start when it is missing; otherwise a missing folder is an error (a typo would watch nothing).'),
    afterUpload: z
      .union([
        z.enum(['keep', 'delete']),
        z
          .object({
            moveTo: z
              .string()
              .min(1)
              .describe('Folder delivered files move to, relative to the drop folder (or absolute); sub-folders are kept, names never overwritten.'),
          })
          .strict(),
      ])
      .default('keep')
      .describe("What happens to a file once the server confirmed it (an outbox): `'keep'` it, `'delete'` it, or `{ moveTo }` a folder; with its `.notify` sidecar. A file changed since its snapshot is kept and sent again."),
    include: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe('Only files matching one of these glob patterns (picomatch; relative to the drop folder, a pattern without `/` matches the file name at any depth) are taken; default: all.'),
    exclude: z.array(z.string().min(1)).default([]).describe('Files matching one of these glob patterns are never taken (checked after `include`).'),
  })
  .strict();

export const watchEntrySchema = z.union([watchFileSchema, watchDirSchema]);

export const localTransportSchema = z
  .object({
    type: z.literal('local'),
    dir: z
      .string()
      .min(1)
      .describe("Destination folder (created when missing); relative paths are relative to the config file's folder (the API: `TaskMaster`'s `cwd`)."),
  })
  .strict();

/** Fields every network transport shares (SPEC §5). */
const networkFields = {
  host: z.string().min(1).describe('Server host name or address.'),
  username: z.string().min(1).describe('Login name.'),
  password: z.string().optional().describe('Password (secret: never logged). Prefer `process.env.X` over a literal.'),
  remoteDir: z.string().default('.').describe('Remote folder every file lands in (created when missing); nothing is ever written outside it.'),
  transfers: positiveInt().max(64).default(4).describe('Parallel uploads of independent files (one connection each).'),
};

export const sftpTransportSchema = z
  .object({
    type: z.literal('sftp'),
    ...networkFields,
    port: z.number().int().min(1).max(65535).default(22).describe('SSH port.'),
    privateKey: z.string().optional().describe("A private key file's path, or the key text itself (secret)."),
    passphrase: z.string().optional().describe('Passphrase of an encrypted private key (secret).'),
    agent: z.union([z.boolean(), z.string()]).default(false).describe('Authenticate with an ssh-agent: `true` for `$SSH_AUTH_SOCK`, or a socket path.'),
    hostKey: z
      .string()
      .optional()
      .describe("Pin the server's host key: `'SHA256:…'` (as `ssh-keygen -lf` prints it), or `'accept-new'` to pin it on first use. Without it, `knownHosts` decides."),
    knownHosts: z.string().optional().describe('known_hosts file used when `hostKey` is not set; default `~/.ssh/known_hosts`.'),
    compress: z
      .boolean()
      .default(false)
      .describe('Offer SSH compression (`zlib@openssh.com`, then `zlib`): fewer bytes for text such as CSV on a slow or metered link, more CPU; the server decides.'),
  })
  .strict();

export const ftpTransportSchema = z
  .object({
    type: z.literal('ftp'),
    ...networkFields,
    port: z.number().int().min(1).max(65535).optional().describe('FTP port; default 21, or 990 with `secure: \'implicit\'`.'),
    secure: z
      .union([z.boolean(), z.literal('implicit')])
      .default(true)
      .describe("`true`: explicit FTPS (AUTH TLS); `'implicit'`: implicit FTPS; `false`: plain FTP (passwords in clear text: allowed, with a warning)."),
    tls: z
      .object({
        ca: z.string().optional().describe("A CA certificate file (PEM) to verify the server's certificate with."),
        rejectUnauthorized: z.boolean().default(true).describe('`false` accepts any certificate (self-signed test servers only).'),
      })
      .strict()
      .default({ rejectUnauthorized: true })
      .describe('Certificate verification for FTPS.'),
  })
  .strict();

export const dropboxTransportSchema = z
  .object({
    type: z.literal('dropbox'),
    refreshToken: z.string().optional().describe('OAuth refresh token from `pushtask dropbox-auth` (secret).'),
    appKey: z.string().optional().describe("Your Dropbox app's key (with `refreshToken`)."),
    appSecret: z.string().optional().describe("Your Dropbox app's secret, if the app is not a PKCE app (secret)."),
    accessToken: z.string().optional().describe('A legacy long-lived access token (secret); prefer `refreshToken` + `appKey`.'),
    remoteDir: z.string().default('/').describe('Dropbox folder every file lands in, e.g. `/pushtask`.'),
    transfers: positiveInt().max(64).default(4).describe('Parallel uploads of independent files.'),
    baseUrl: z.string().url().optional().describe('Send every API call to a Dropbox-compatible server instead (tests): `<baseUrl>/2/<route>`, `<baseUrl>/oauth2/token`.'),
  })
  .strict()
  .refine((value) => Boolean(value.accessToken) || Boolean(value.refreshToken && value.appKey), {
    message: 'expected `refreshToken` + `appKey` (from `pushtask dropbox-auth`), or a legacy `accessToken`',
  });

export const s3TransportSchema = z
  .object({
    type: z.literal('s3'),
    bucket: z.string().min(3).max(255).describe('Bucket every file lands in (it must exist).'),
    remoteDir: z.string().default('').describe('Key prefix every file lands under, e.g. `site-7` (keys `site-7/<name>`); nothing is ever written outside it.'),
    region: z.string().min(1).optional().describe("The bucket's region; default `AWS_REGION` or the profile's region, else `us-east-1`."),
    endpoint: z.string().url().optional().describe('An S3-compatible server (Ceph RGW, MinIO, R2, B2, Wasabi) instead of AWS, e.g. `https://s3.example.org:7480`.'),
    forcePathStyle: z.boolean().optional().describe('Path-style addressing (`<endpoint>/<bucket>/<key>`); default `true` with `endpoint`, `false` on AWS.'),
    accessKeyId: z.string().min(1).optional().describe("Access key id (with `secretAccessKey`); without both, the AWS SDK's default credential chain (environment, shared files, instance metadata)."),
    secretAccessKey: z.string().min(1).optional().describe('Secret access key (secret: never logged). Prefer `process.env.X` over a literal.'),
    sessionToken: z.string().min(1).optional().describe('Session token of temporary credentials (secret).'),
    profile: z.string().min(1).optional().describe('Profile of the shared AWS config and credentials files, used when no keys are given.'),
    transfers: positiveInt().max(64).default(4).describe('Parallel uploads of independent files; a big file also sends 4 parts at once.'),
  })
  .strict()
  .refine((value) => (value.accessKeyId === undefined) === (value.secretAccessKey === undefined), {
    message: 'expected both `accessKeyId` and `secretAccessKey`, or neither (then the AWS SDK default credential chain applies)',
  });

/** Each transport adds its schema here; the `type` field selects it. */
export const transportSchema = z.discriminatedUnion('type', [
  localTransportSchema,
  sftpTransportSchema,
  ftpTransportSchema,
  dropboxTransportSchema,
  s3TransportSchema,
]);

export const retrySchema = z
  .object({
    strategy: z
      .enum(['pysubtask', 'exponential'])
      .default('pysubtask')
      .describe('`pysubtask`: `quickTries` tries `quickDelayMs` apart, then one `longDelayMs` wait, repeated forever; `exponential`: doubling from `quickDelayMs` up to `maxDelayMs`, with jitter.'),
    quickTries: positiveInt().default(5).describe('Quick tries before a long wait.'),
    quickDelayMs: nonNegativeInt().default(3000).describe('Wait between quick tries (ms).'),
    longDelayMs: nonNegativeInt().default(30_000).describe('Wait after a set of quick tries failed, and after authentication or host-key errors (ms).'),
    maxDelayMs: positiveInt().default(300_000).describe('Upper bound of the exponential strategy (ms).'),
  })
  .strict();

export const LINK_DEFAULTS = { keepaliveIntervalMs: 5000, keepaliveCountMax: 2, stallTimeoutMs: 15_000 } as const;

export const linkSchema = z
  .object({
    keepaliveIntervalMs: positiveInt()
      .default(LINK_DEFAULTS.keepaliveIntervalMs)
      .describe('Probe a connection that received nothing for this long (SSH keepalive; NOOP on an idle FTP control connection) (ms).'),
    keepaliveCountMax: nonNegativeInt()
      .default(LINK_DEFAULTS.keepaliveCountMax)
      .describe('Unanswered probes before the connection counts as dead: a silent drop is noticed within `keepaliveIntervalMs × (keepaliveCountMax + 1)`.'),
    stallTimeoutMs: positiveInt()
      .default(LINK_DEFAULTS.stallTimeoutMs)
      .describe('An upload or request that moves no byte for this long is aborted, its connection replaced and the file retried (ms).'),
  })
  .strict();

export const heartbeatSchema = z
  .object({
    intervalSec: nonNegativeInt().default(0).describe('Seconds between heartbeats; 0 turns them off.'),
    name: z.string().min(1).optional().describe('Heartbeat file name without `.heartbeat`; default: the host name.'),
  })
  .strict();

export const ARCHIVE_DEFAULTS = { afterDays: 3, toFolder: 'archive' } as const;

export const archiveSchema = z
  .object({
    afterDays: z
      .number()
      .positive()
      .finite()
      .default(3)
      .describe('At start, delivered files older than this many days (by mtime) are archived; undelivered ones never are.'),
    toFolder: z.string().min(1).default('archive').describe('Archive folder, relative to each data folder; files go to `<toFolder>/<YYYYMM>/<DD>/`.'),
  })
  .strict();

export const logSchema = z
  .object({
    dir: z.string().min(1).default('logs').describe('Folder of `pushtask-master.log` and `pushtask-subtask.log` (JSON lines).'),
    level: z
      .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
      .default('info')
      .describe('Log level; change it at run time with `master.setLogLevel()`.'),
    console: z.boolean().default(true).describe('Also write human-readable lines to stderr.'),
    maxBytes: nonNegativeInt()
      .default(10 * 1024 * 1024)
      .describe('Rotate a log file once it reaches this size: `pushtask-master.log` → `.1` → `.2` …; 0 never rotates (leave it to logrotate, see SIGUSR1).'),
    keepFiles: positiveInt().max(1000).default(5).describe('Rotated log files kept per log (the oldest is deleted).'),
  })
  .strict();

const RETRY_DEFAULTS = { strategy: 'pysubtask', quickTries: 5, quickDelayMs: 3000, longDelayMs: 30_000, maxDelayMs: 300_000 } as const;

export const configSchema = z
  .object({
    watch: z.array(watchEntrySchema).min(1).describe('Data files (`{ file }`) and drop folders (`{ dir }`) to deliver. At least one.'),
    transport: transportSchema.default({ type: 'local', dir: 'outbox' }).describe('Where files go; `type` selects the transport.'),
    intervalMs: z.number().int().min(10).default(2000).describe('Sidecar poll interval (ms); file-system events usually see a notify much sooner.'),
    fsEvents: z.boolean().default(true).describe('See notifies at once through file-system events; `false` polls sidecars only (some network shares).'),
    deadTimeMs: nonNegativeInt().default(180_000).describe('Close the connection after this long (ms) without notifies, heartbeats or uploads.'),
    autoFlush: z.boolean().default(true).describe('Flush data held back by burst mode automatically when its burst expires.'),
    gracefulTimeoutMs: nonNegativeInt().default(10_000).describe('How long `stop({ forceKill: false })` waits for the upload in flight before killing (ms).'),
    operationTimeoutMs: positiveInt()
      .default(30_000)
      .describe('Outer bound of every single transport operation: connect, upload (ms; uploads get 1 s more per MB). A dead connection fails its operations at once (`link`).'),
    link: linkSchema.default(LINK_DEFAULTS).describe('How a dead or stuck connection is noticed (silent drops, stalled uploads).'),
    bandwidthLimit: z
      .union([z.number().nonnegative(), z.string()])
      .optional()
      .superRefine((value, ctx) => {
        if (value === undefined) return;
        try {
          parseBandwidthLimit(value);
        } catch (error) {
          ctx.addIssue({ code: z.ZodIssueCode.custom, message: (error as Error).message });
        }
      })
      .describe(
        "Upload limit shared by all transfers: bytes per second, or rclone's `--bwlimit` syntax: `'512k'`, `'08:00,512k 19:00,off'` (local times; k/M/G are KiB/MiB/GiB; `off` or 0 for none). Not applied to the local transport.",
      ),
    spoolDir: z.string().min(1).optional().describe('Spool folder for snapshots and state; default `<first watched folder>/upload/<transport type>`.'),
    heartbeat: heartbeatSchema.default({ intervalSec: 0 }).describe('Periodic `<name>.heartbeat` files that tell a monitor this client is alive.'),
    archive: z
      .union([z.literal(false), archiveSchema])
      .default(ARCHIVE_DEFAULTS)
      .describe('Archival of old, delivered files at start; `false` turns it off.'),
    retry: retrySchema.default(RETRY_DEFAULTS).describe('Retry schedule for connection and upload failures; retries go on until stop.'),
    log: logSchema
      .default({ dir: 'logs', level: 'info', console: true, maxBytes: 10 * 1024 * 1024, keepFiles: 5 })
      .describe('Logging.'),
  })
  .strict();

/** What a user writes (defaults optional). */
export type PushtaskConfig = z.input<typeof configSchema>;
/** After validation, with defaults filled in (paths still as written). */
export type ParsedConfig = z.output<typeof configSchema>;
export type TransportConfig = z.output<typeof transportSchema>;
export type LocalTransportConfig = z.output<typeof localTransportSchema>;
export type SftpTransportConfig = z.output<typeof sftpTransportSchema>;
export type FtpTransportConfig = z.output<typeof ftpTransportSchema>;
export type DropboxTransportConfig = z.output<typeof dropboxTransportSchema>;
export type S3TransportConfig = z.output<typeof s3TransportSchema>;
export type RetryConfig = z.output<typeof retrySchema>;
export type LinkConfig = z.output<typeof linkSchema>;
export type BurstSettings = z.output<typeof burstSchema>;
export type LogLevel = z.output<typeof logSchema>['level'];
