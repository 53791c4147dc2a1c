/**
 * One example value per configuration field, for the README's configuration reference. Keys are
 * the reference's field names, with the transport in parentheses where fields differ per
 * transport (`transport.host (sftp)`); a key without it applies to every variant. The reference
 * generator refuses a field without an example, and test/unit/config-examples.test.ts checks
 * that the schema accepts each one and that none is left for a field that no longer exists.
 */

/** A secret read from the environment: shown as `process.env.NAME`, validated as a string. */
export class EnvExample {
  constructor(readonly name: string) {}
}

const env = (name: string) => new EnvExample(name);

export const FIELD_EXAMPLES: Readonly<Record<string, unknown>> = {
  watch: [{ file: 'logs/data.csv', burstMode: true }, { dir: 'logs/drop' }],
  'watch[].file': 'logs/data.csv',
  'watch[].burstMode': true,
  'watch[].burstMode.startTriggerMs': 500,
  'watch[].burstMode.startTriggerCount': 3,
  'watch[].burstMode.expireMs': 10_000,
  'watch[].mode': 'append',
  'watch[].dir': 'logs/drop',
  'watch[].recursive': false,
  'watch[].stableMs': 3000,
  'watch[].usePolling': true,
  'watch[].followSymlinks': true,
  'watch[].create': true,
  'watch[].afterUpload': 'delete',
  'watch[].afterUpload.moveTo': 'sent',
  'watch[].include': ['*.csv', 'site-*/**'],
  'watch[].exclude': ['*.tmp.csv'],

  transport: { type: 'sftp', host: 'data.example.org', username: 'logger', password: env('PUSHTASK_PASSWORD'), remoteDir: 'incoming' },
  'transport.dir (local)': '/mnt/backup/pushtask',
  'transport.host': 'data.example.org',
  'transport.username': 'logger',
  'transport.password': env('PUSHTASK_PASSWORD'),
  'transport.remoteDir': 'incoming/site-7',
  'transport.remoteDir (dropbox)': '/pushtask',
  'transport.transfers': 2,
  'transport.port (sftp)': 2222,
  'transport.privateKey (sftp)': '~/.ssh/id_ed25519',
  'transport.passphrase (sftp)': env('PUSHTASK_KEY_PASSPHRASE'),
  'transport.agent (sftp)': true,
  'transport.hostKey (sftp)': 'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s',
  'transport.knownHosts (sftp)': '/etc/pushtask/known_hosts',
  'transport.compress (sftp)': true,
  'transport.port (ftp)': 2121,
  'transport.secure (ftp)': 'implicit',
  'transport.tls (ftp)': { ca: '/etc/pushtask/company-ca.pem' },
  'transport.tls.ca': '/etc/pushtask/company-ca.pem',
  'transport.tls.rejectUnauthorized': false,
  'transport.refreshToken (dropbox)': env('PUSHTASK_DROPBOX_REFRESH_TOKEN'),
  'transport.appKey (dropbox)': 'a1b2c3d4e5f6g7h',
  'transport.appSecret (dropbox)': env('PUSHTASK_DROPBOX_APP_SECRET'),
  'transport.accessToken (dropbox)': env('PUSHTASK_DROPBOX_ACCESS_TOKEN'),
  'transport.baseUrl (dropbox)': 'http://127.0.0.1:8080',
  'transport.bucket (s3)': 'logger-fleet',
  'transport.remoteDir (s3)': 'site-7',
  'transport.region (s3)': 'eu-central-1',
  'transport.endpoint (s3)': 'https://s3.example.org:7480',
  'transport.forcePathStyle (s3)': true,
  'transport.accessKeyId (s3)': 'AKIAIOSFODNN7EXAMPLE',
  'transport.secretAccessKey (s3)': env('PUSHTASK_S3_SECRET'),
  'transport.sessionToken (s3)': env('AWS_SESSION_TOKEN'),
  'transport.profile (s3)': 'pushtask',

  intervalMs: 1000,
  fsEvents: false,
  deadTimeMs: 600_000,
  autoFlush: false,
  gracefulTimeoutMs: 30_000,
  operationTimeoutMs: 60_000,
  bandwidthLimit: '08:00,512k 19:00,off',
  link: { keepaliveIntervalMs: 10_000, stallTimeoutMs: 30_000 },
  'link.keepaliveIntervalMs': 10_000,
  'link.keepaliveCountMax': 3,
  'link.stallTimeoutMs': 30_000,
  spoolDir: '/var/lib/pushtask/spool',
  heartbeat: { intervalSec: 60, name: 'logger-7' },
  'heartbeat.intervalSec': 60,
  'heartbeat.name': 'logger-7',
  archive: { afterDays: 7, toFolder: 'old' },
  'archive.afterDays': 7,
  'archive.toFolder': 'old',
  retry: { strategy: 'exponential', quickDelayMs: 1000, maxDelayMs: 600_000 },
  'retry.strategy': 'exponential',
  'retry.quickTries': 3,
  'retry.quickDelayMs': 1000,
  'retry.longDelayMs': 120_000,
  'retry.maxDelayMs': 600_000,
  log: { dir: '/var/log/pushtask', level: 'debug' },
  'log.dir': '/var/log/pushtask',
  'log.maxBytes': 50 * 1024 * 1024,
  'log.keepFiles': 10,
  'log.level': 'debug',
  'log.console': false,
};

/** The example for a reference row: `transport.host (sftp)`, else `transport.host`. */
export function exampleFor(field: string, variant: string | undefined): { found: true; value: unknown } | { found: false } {
  const keys = variant ? [`${field} (${variant})`, field] : [field];
  for (const key of keys) if (Object.hasOwn(FIELD_EXAMPLES, key)) return { found: true, value: FIELD_EXAMPLES[key] };
  return { found: false };
}

/** The example as it would be written in a config file. */
export function exampleSource(value: unknown): string {
  if (value instanceof EnvExample) return `process.env.${value.name}`;
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (Array.isArray(value)) return `[${value.map(exampleSource).join(', ')}]`;
  if (value && typeof value === 'object') {
    return `{ ${Object.entries(value)
      .map(([key, inner]) => `${key}: ${exampleSource(inner)}`)
      .join(', ')} }`;
  }
  return String(value);
}

/** The value the schema sees for an example (an environment secret is some string). */
export function exampleValue(value: unknown): unknown {
  if (value instanceof EnvExample) return 'example-secret';
  if (Array.isArray(value)) return value.map(exampleValue);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, exampleValue(inner)]));
  return value;
}
