import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { ConfigError, defineConfig, resolveConfig } from '../../src/config/resolve.js';
import { PushtaskError } from '../../src/shared/errors.js';
import { REDACT_PATHS, collectSecrets, isSecretKey, scrubSecrets } from '../../src/shared/secrets.js';

const CWD = path.resolve('/srv/app');

/** Runs resolveConfig expecting a ConfigError; returns it. */
function configError(input: unknown, options: { cwd?: string; source?: string } = {}): ConfigError {
  try {
    resolveConfig(input, { cwd: CWD, ...options });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected resolveConfig to throw');
}

/** The single problem reported for `input`. */
function problem(input: unknown): string {
  const error = configError(input);
  expect(error.problems).toHaveLength(1);
  return error.problems[0]!;
}

const withWatch = (extra: Record<string, unknown>) => ({ watch: [{ file: 'logs/test1.csv' }], ...extra });

describe('resolveConfig: defaults (pysubtask)', () => {
  it('fills in every default', () => {
    const config = resolveConfig({ watch: [{ file: 'logs/test1.csv' }] }, { cwd: CWD });
    expect(config).toEqual({
      watch: [{ kind: 'file', index: 0, path: path.join(CWD, 'logs/test1.csv'), mode: 'replace', burst: null, create: false }],
      transport: { type: 'local', dir: path.join(CWD, 'outbox') },
      intervalMs: 2000,
      fsEvents: true,
      deadTimeMs: 180_000,
      autoFlush: true,
      gracefulTimeoutMs: 10_000,
      operationTimeoutMs: 30_000,
      link: { keepaliveIntervalMs: 5000, keepaliveCountMax: 2, stallTimeoutMs: 15_000 },
      dataDir: path.join(CWD, 'logs'),
      spoolDir: path.join(CWD, 'logs', 'upload', 'local'),
      heartbeat: { intervalSec: 0, name: os.hostname() },
      archive: { enabled: true, afterDays: 3, toFolder: 'archive' },
      retry: { strategy: 'pysubtask', quickTries: 5, quickDelayMs: 3000, longDelayMs: 30_000, maxDelayMs: 300_000 },
      log: {
        level: 'info',
        console: true,
        masterFile: path.join(CWD, 'logs', 'pushtask-master.log'),
        subtaskFile: path.join(CWD, 'logs', 'pushtask-subtask.log'),
        rotation: { maxBytes: 10 * 1024 * 1024, keep: 5 },
      },
    });
  });

  it('burstMode: true gives 1000 ms × 2, expiring after 5000 ms', () => {
    const config = resolveConfig({ watch: [{ file: 'a.csv', burstMode: true }] }, { cwd: CWD });
    expect(config.watch[0]).toMatchObject({ kind: 'file', burst: { startTriggerMs: 1000, startTriggerCount: 2, expireMs: 5000 } });
  });

  it('burstMode: false and no burstMode mean no burst detection', () => {
    const config = resolveConfig({ watch: [{ file: 'a.csv', burstMode: false }, { file: 'b.csv' }] }, { cwd: CWD });
    expect(config.watch.map((w) => (w.kind === 'file' ? w.burst : 'dir'))).toEqual([null, null]);
  });

  it('a partial burstMode object is merged with the defaults', () => {
    const config = resolveConfig(
      {
        watch: [
          { file: 'a.csv', burstMode: { expireMs: 8000 } },
          { file: 'b.csv', burstMode: { startTriggerCount: 4, startTriggerMs: 250 } },
          { file: 'c.csv', burstMode: {} },
        ],
      },
      { cwd: CWD },
    );
    const bursts = config.watch.map((w) => (w.kind === 'file' ? w.burst : undefined));
    expect(bursts).toEqual([
      { startTriggerMs: 1000, startTriggerCount: 2, expireMs: 8000 },
      { startTriggerMs: 250, startTriggerCount: 4, expireMs: 5000 },
      { startTriggerMs: 1000, startTriggerCount: 2, expireMs: 5000 },
    ]);
  });

  it('drop folders get their defaults', () => {
    const config = resolveConfig({ watch: [{ dir: 'drop' }] }, { cwd: CWD });
    expect(config.watch).toEqual([
      {
        kind: 'dir',
        index: 0,
        path: path.join(CWD, 'drop'),
        mode: 'replace',
        recursive: true,
        stableMs: 1000,
        usePolling: false,
        followSymlinks: false,
        create: false,
        afterUpload: { kind: 'keep' },
        include: null,
        exclude: [],
      },
    ]);
  });

  it('a network credential that is there but empty (an unset environment variable) is named, before any login', () => {
    const sftp = { type: 'sftp', host: 'h', username: 'u', hostKey: 'accept-new' };
    expect(configError(withWatch({ transport: { ...sftp, password: undefined } })).problems).toEqual([
      'transport.password: is empty (undefined); if it is read from an environment variable (process.env.…), that variable is not set where pushtask runs',
    ]);
    expect(problem(withWatch({ transport: { ...sftp, password: '' } }))).toMatch(/^transport\.password: is empty \(an empty string\)/);
    expect(problem(withWatch({ transport: sftp }))).toBe('transport: an sftp login needs `password`, `privateKey` or `agent`; none is set');
    expect(problem(withWatch({ transport: { type: 'ftp', host: 'h', username: 'u', password: undefined } }))).toMatch(/^transport\.password: is empty/);
    const dropbox = configError(withWatch({ transport: { type: 'dropbox', refreshToken: undefined, appKey: 'k' } })).problems;
    expect(dropbox[0]).toMatch(/^transport\.refreshToken: is empty \(undefined\)/);
    // An agent or a key is a credential; a local transport needs none.
    expect(resolveConfig(withWatch({ transport: { ...sftp, agent: true } }), { cwd: CWD }).transport.type).toBe('sftp');
    expect(resolveConfig(withWatch({ transport: { type: 'local', dir: 'out' } }), { cwd: CWD }).transport.type).toBe('local');
  });

  it("drop folders: afterUpload's moveTo is relative to the drop folder and must not hold it", () => {
    const input = (afterUpload: unknown) => ({ watch: [{ dir: 'drop', afterUpload }, { dir: 'other' }] });
    expect(resolveConfig(input({ moveTo: 'sent' }), { cwd: CWD }).watch[0]).toMatchObject({ afterUpload: { kind: 'move', dir: path.join(CWD, 'drop', 'sent') } });
    expect(resolveConfig(input('delete'), { cwd: CWD }).watch[0]).toMatchObject({ afterUpload: { kind: 'delete' } });
    expect(problem(input({ moveTo: '.' }))).toMatch(/^watch\.0\.afterUpload\.moveTo: .* is the drop folder or holds it/);
    expect(problem(input({ moveTo: '../other/sent' }))).toMatch(/inside the drop folder of watch\.1/);
    expect(problem(input('move'))).toMatch(/^watch\.0\.afterUpload/);
  });

  it('partial nested objects keep the other defaults', () => {
    const config = resolveConfig(
      withWatch({ retry: { quickTries: 3 }, heartbeat: { intervalSec: 60, name: 'logger-7' }, archive: { afterDays: 7 }, log: { level: 'debug' } }),
      { cwd: CWD },
    );
    expect(config.retry).toEqual({ strategy: 'pysubtask', quickTries: 3, quickDelayMs: 3000, longDelayMs: 30_000, maxDelayMs: 300_000 });
    expect(config.heartbeat).toEqual({ intervalSec: 60, name: 'logger-7' });
    expect(config.archive).toEqual({ enabled: true, afterDays: 7, toFolder: 'archive' });
    expect(config.log.level).toBe('debug');
    expect(config.log.console).toBe(true);
  });

  it('keeps given values', () => {
    const config = resolveConfig(withWatch({ intervalMs: 10, deadTimeMs: 0, autoFlush: false, gracefulTimeoutMs: 0, fsEvents: false }), { cwd: CWD });
    expect([config.intervalMs, config.deadTimeMs, config.autoFlush, config.gracefulTimeoutMs, config.fsEvents]).toEqual([10, 0, false, 0, false]);
  });

  it('numbers watch entries in order and keeps mode', () => {
    const config = resolveConfig({ watch: [{ file: 'a.mrk' }, { file: 'b.csv', mode: 'append' }, { dir: 'drop', mode: 'append' }] }, { cwd: CWD });
    expect(config.watch.map((w) => [w.kind, w.index, w.mode])).toEqual([
      ['file', 0, 'replace'],
      ['file', 1, 'append'],
      ['dir', 2, 'append'],
    ]);
  });

  it('defineConfig is the identity', () => {
    const input = { watch: [{ file: 'x.csv' }] };
    expect(defineConfig(input)).toBe(input);
  });
});

describe('resolveConfig: paths', () => {
  it('resolves relative paths against the cwd option and keeps absolute ones', () => {
    const absolute = path.resolve('/data/elsewhere/b.csv');
    const config = resolveConfig(
      {
        watch: [{ file: './logs/../logs/a.csv' }, { file: absolute }, { dir: 'drop/in' }],
        transport: { type: 'local', dir: '../outgoing' },
        spoolDir: 'spool',
        log: { dir: '/var/log/pushtask' },
      },
      { cwd: CWD },
    );
    expect(config.watch.map((w) => w.path)).toEqual([path.join(CWD, 'logs/a.csv'), absolute, path.join(CWD, 'drop/in')]);
    expect(config.transport).toEqual({ type: 'local', dir: path.resolve(CWD, '../outgoing') });
    expect(config.spoolDir).toBe(path.join(CWD, 'spool'));
    expect(config.log.masterFile).toBe(path.resolve('/var/log/pushtask/pushtask-master.log'));
  });

  it('defaults cwd to process.cwd()', () => {
    const config = resolveConfig({ watch: [{ file: 'a.csv' }] });
    expect(config.watch[0]!.path).toBe(path.join(process.cwd(), 'a.csv'));
  });

  it('spoolDir default: <folder of the first watched file>/upload/<transport type>', () => {
    const config = resolveConfig({ watch: [{ file: 'data/x/a.csv' }, { dir: 'drop' }] }, { cwd: CWD });
    expect(config.dataDir).toBe(path.join(CWD, 'data/x'));
    expect(config.spoolDir).toBe(path.join(CWD, 'data/x/upload/local'));
  });

  it('spoolDir default: <first watched dir>/upload/<transport type> when the first entry is a folder', () => {
    const config = resolveConfig({ watch: [{ dir: 'drop' }, { file: 'data/a.csv' }] }, { cwd: CWD });
    expect(config.dataDir).toBe(path.join(CWD, 'drop'));
    expect(config.spoolDir).toBe(path.join(CWD, 'drop/upload/local'));
  });

  it('an explicit spoolDir wins', () => {
    const config = resolveConfig(withWatch({ spoolDir: '/tmp/my-spool' }), { cwd: CWD });
    expect(config.spoolDir).toBe(path.resolve('/tmp/my-spool'));
  });
});

describe('resolveConfig: errors name the field, the expectation and the given value', () => {
  it('is a ConfigError with code CONFIG_INVALID and a problems list', () => {
    const error = configError(withWatch({ intervalMs: 'fast' }));
    expect(error).toBeInstanceOf(PushtaskError);
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.name).toBe('ConfigError');
    expect(error.problems).toEqual(['intervalMs: Invalid input: expected number, received string; given "fast"']);
    expect(error.message).toBe('Invalid pushtask configuration:\n  - intervalMs: Invalid input: expected number, received string; given "fast"');
  });

  it('names the config file when given a source', () => {
    const error = configError(withWatch({ intervalMs: 5 }), { source: '/etc/pushtask.config.ts' });
    expect(error.message).toMatch(/^Invalid pushtask configuration in \/etc\/pushtask\.config\.ts:\n {2}- intervalMs: /);
  });

  it.each([
    ['intervalMs below 10', withWatch({ intervalMs: 5 }), 'intervalMs', '>=10', 'given 5'],
    ['intervalMs not an integer', withWatch({ intervalMs: 15.5 }), 'intervalMs', 'int', 'given 15.5'],
    ['deadTimeMs negative', withWatch({ deadTimeMs: -1 }), 'deadTimeMs', '>=0', 'given -1'],
    ['autoFlush not boolean', withWatch({ autoFlush: 'yes' }), 'autoFlush', 'expected boolean', 'given "yes"'],
    ['watch.0.file a number', { watch: [{ file: 42 }] }, 'watch.0.file', 'expected string', 'given 42'],
    ['watch.0.file empty', { watch: [{ file: '' }] }, 'watch.0.file', '>=1 characters', 'given ""'],
    ['watch.1.dir a number', { watch: [{ file: 'a' }, { dir: 7 }] }, 'watch.1.dir', 'expected string', 'given 7'],
    ['watch.0.mode', { watch: [{ file: 'a', mode: 'merge' }] }, 'watch.0.mode', '"replace"|"append"', 'given "merge"'],
    ['watch.0.burstMode', { watch: [{ file: 'a', burstMode: 'yes' }] }, 'watch.0.burstMode', 'expected boolean or object', 'given "yes"'],
    [
      'watch.0.burstMode.startTriggerMs',
      { watch: [{ file: 'a', burstMode: { startTriggerMs: -1 } }] },
      'watch.0.burstMode.startTriggerMs',
      '>0',
      'given -1',
    ],
    ['watch.0.stableMs', { watch: [{ dir: 'd', stableMs: -5 }] }, 'watch.0.stableMs', '>=0', 'given -5'],
    ['transport.type unknown', withWatch({ transport: { type: 'carrier-pigeon' } }), 'transport.type', "Expected 'local'", 'given "carrier-pigeon"'],
    ['transport.type missing', withWatch({ transport: { dir: 'x' } }), 'transport.type', "Expected 'local'", 'given nothing'],
    ['transport.dir missing', withWatch({ transport: { type: 'local' } }), 'transport.dir', 'expected string', 'given nothing'],
    ['retry.quickTries zero', withWatch({ retry: { quickTries: 0 } }), 'retry.quickTries', '>0', 'given 0'],
    ['retry.strategy', withWatch({ retry: { strategy: 'linear' } }), 'retry.strategy', '"pysubtask"|"exponential"', 'given "linear"'],
    ['heartbeat.intervalSec', withWatch({ heartbeat: { intervalSec: -1 } }), 'heartbeat.intervalSec', '>=0', 'given -1'],
    ['archive.toFolder', withWatch({ archive: { toFolder: '' } }), 'archive.toFolder', '>=1 characters', 'given ""'],
    ['log.level', withWatch({ log: { level: 'verbose' } }), 'log.level', '"silent"', 'given "verbose"'],
    ['spoolDir', withWatch({ spoolDir: 3 }), 'spoolDir', 'expected string', 'given 3'],
  ])('%s', (_name, input, field, expected, given) => {
    const message = problem(input);
    expect(message.startsWith(`${field}: `)).toBe(true);
    expect(message).toContain(expected);
    expect(message).toContain(given);
  });

  it('reports every problem at once', () => {
    const error = configError({ watch: [{ file: 'a' }], intervalMs: 1, deadTimeMs: -1, retry: { quickDelayMs: 'x' } });
    expect(error.problems.map((p) => p.split(':')[0])).toEqual(['intervalMs', 'deadTimeMs', 'retry.quickDelayMs']);
  });

  it('reports unknown keys (typos) with their names', () => {
    expect(problem(withWatch({ intervalMS: 2000 }))).toBe('(config): unknown field(s) "intervalMS" (check the spelling)');
    expect(problem(withWatch({ retry: { quicktries: 5, longDelay: 1 } }))).toBe(
      'retry: unknown field(s) "quicktries", "longDelay" (check the spelling)',
    );
    expect(problem({ watch: [{ file: 'a', burstMode: { expireMS: 10 } }] })).toBe(
      'watch.0.burstMode: unknown field(s) "expireMS" (check the spelling)',
    );
    expect(problem({ watch: [{ file: 'a', recursive: true }] })).toBe('watch.0: unknown field(s) "recursive" (check the spelling)');
  });

  it('explains a watch entry that is neither a file nor a folder', () => {
    expect(problem({ watch: [{ path: 'x' }] })).toBe('watch.0: expected { file: "path" } or { dir: "path" } with their options; given an object with keys path');
    expect(problem({ watch: [{ file: 'x', dir: 'y' }] })).toContain('given an object with keys file, dir');
    expect(problem({ watch: ['logs/a.csv'] })).toBe('watch.0: expected { file: "path" } or { dir: "path" } with their options; given "logs/a.csv"');
  });

  it('rejects an empty or missing watch list', () => {
    expect(problem({ watch: [] })).toBe('watch: Too small: expected array to have >=1 items; given an array of 0');
    expect(problem({})).toBe('watch: Invalid input: expected array, received undefined; given nothing');
  });

  it('rejects a config that is not an object', () => {
    expect(problem('hello')).toBe('(config): Invalid input: expected object, received string; given "hello"');
    expect(problem(null)).toBe('(config): Invalid input: expected object, received null; given null');
  });

  it('shortens long given strings', () => {
    const message = problem(withWatch({ log: { level: 'x'.repeat(100) } }));
    expect(message).toContain(`given "${'x'.repeat(57)}..."`);
    expect(message).not.toContain('x'.repeat(58));
  });

  it('rejects duplicate watch paths after resolving them', () => {
    const error = configError({ watch: [{ file: 'logs/a.csv' }, { dir: 'drop' }, { file: './logs/../logs/a.csv' }] });
    expect(error.problems).toEqual([`watch.2: ${path.join(CWD, 'logs/a.csv')} is already watch.0`]);
  });

  it('rejects the same path as a file and as a folder', () => {
    const error = configError({ watch: [{ dir: 'logs' }, { file: path.join(CWD, 'logs') }] });
    expect(error.problems).toEqual([`watch.1: ${path.join(CWD, 'logs')} is already watch.0`]);
  });
});

describe('resolveConfig: secrets never appear in errors', () => {
  const SECRET = 'S3cr3t-Pa55word!';

  it('an unknown transport type with a password', () => {
    const error = configError(withWatch({ transport: { type: 'scp', host: 'h', username: 'u', password: SECRET, passphrase: SECRET } }));
    expect(error.problems).toEqual([`transport.type: Invalid discriminator value. Expected 'local' | 'sftp' | 'ftp' | 'dropbox' | 's3'; given "scp"`]);
    expect(error.message).not.toContain(SECRET);
  });

  it('a wrongly typed secret is reported without its value', () => {
    const error = configError(withWatch({ transport: { type: 'sftp', host: 'h', username: 'u', password: 12345678, port: 'twenty-two' } }));
    expect(error.message).toContain('transport.password');
    expect(error.message).toContain('transport.port');
    expect(error.message).not.toContain('12345678');
  });

  it('a password where it does not belong', () => {
    const error = configError(withWatch({ transport: { type: 'local', dir: 'out', password: SECRET } }));
    expect(error.problems).toEqual(['transport: unknown field(s) "password" (check the spelling)']);
    expect(error.message).not.toContain(SECRET);
  });

  it('a transport without a type, full of secrets', () => {
    const error = configError(withWatch({ transport: { privateKey: SECRET, refreshToken: SECRET, accessToken: SECRET } }));
    expect(error.message).toContain('transport.type');
    expect(error.message).not.toContain(SECRET);
  });
});

describe('resolveConfig: a value under a secret key is never echoed', () => {
  // No field of today's schema is secret (the network transports add password & co.), so mark
  // `dir` secret to exercise the redaction of the given value.
  it('names the field and the expectation, but not the value', async () => {
    vi.resetModules();
    vi.doMock('../../src/shared/secrets.js', async (importOriginal) => ({
      ...(await importOriginal<typeof import('../../src/shared/secrets.js')>()),
      isSecretKey: (key: string) => key === 'dir',
    }));
    try {
      const { resolveConfig: resolveWithDirSecret } = await import('../../src/config/resolve.js');
      const secretNumber = 987_654_321;
      let message = '';
      try {
        resolveWithDirSecret(withWatch({ transport: { type: 'local', dir: secretNumber } }), { cwd: CWD });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toContain('transport.dir: Invalid input: expected string, received number');
      expect(message).not.toContain(String(secretNumber));
      expect(message).not.toContain('given');
    } finally {
      vi.doUnmock('../../src/shared/secrets.js');
      vi.resetModules();
    }
  });
});

describe('secrets', () => {
  it('isSecretKey knows the secret field names, case-sensitively', () => {
    for (const key of ['password', 'passphrase', 'privateKey', 'refreshToken', 'accessToken', 'appSecret']) {
      expect(isSecretKey(key)).toBe(true);
    }
    for (const key of ['username', 'host', 'appKey', 'hostKey', 'type', 'Password', 'pass', '']) {
      expect(isSecretKey(key)).toBe(false);
    }
  });

  it('collectSecrets finds secret values at any depth, in order', () => {
    const config = {
      watch: [{ file: 'a.csv' }],
      transport: { type: 'sftp', host: 'h', username: 'user1', password: 'pw-one', privateKey: '-----BEGIN KEY-----', passphrase: 'phrase' },
      nested: { deeper: [{ refreshToken: 'refresh-tok' }, { accessToken: 'access-tok', appSecret: 'app-secret' }] },
    };
    expect(collectSecrets(config)).toEqual(['pw-one', '-----BEGIN KEY-----', 'phrase', 'refresh-tok', 'access-tok', 'app-secret']);
  });

  it('collectSecrets ignores short and non-string secret values and non-secret keys', () => {
    expect(collectSecrets({ password: 'abc', passphrase: 1234, username: 'longusername', host: 'example.org' })).toEqual([]);
    expect(collectSecrets({ password: 'abcd' })).toEqual(['abcd']);
    expect(collectSecrets(null)).toEqual([]);
    expect(collectSecrets('password')).toEqual([]);
    expect(collectSecrets({ password: undefined, x: null })).toEqual([]);
  });

  it('collectSecrets looks inside a secret key whose value is an object', () => {
    expect(collectSecrets({ privateKey: { password: 'inner-pw' } })).toEqual(['inner-pw']);
  });

  it('collectSecrets appends to a given list', () => {
    const found = ['earlier'];
    expect(collectSecrets({ password: 'later-pw' }, found)).toBe(found);
    expect(found).toEqual(['earlier', 'later-pw']);
  });

  it('scrubSecrets replaces every occurrence of every secret', () => {
    const text = 'login u:hunter22 failed; retry with hunter22 and token abc.def*(x)';
    expect(scrubSecrets(text, ['hunter22', 'abc.def*(x)'])).toBe('login u:[redacted] failed; retry with [redacted] and token [redacted]');
  });

  it('scrubSecrets leaves text without secrets alone', () => {
    expect(scrubSecrets('nothing to see', [])).toBe('nothing to see');
    expect(scrubSecrets('nothing to see', ['hunter22'])).toBe('nothing to see');
  });

  it('scrubSecrets leaves no part of a secret that contains another secret', () => {
    const text = 'passphrase=hunter2-extra password=hunter2';
    const expected = 'passphrase=[redacted] password=[redacted]';
    expect(scrubSecrets(text, ['hunter2', 'hunter2-extra'])).toBe(expected);
    expect(scrubSecrets(text, ['hunter2-extra', 'hunter2'])).toBe(expected);
  });

  it('scrubs what collectSecrets found from a JSON dump of the config', () => {
    const config = { transport: { type: 'ftp', password: 'ftp-pass-1', tls: { passphrase: 'tls-phrase' } } };
    const scrubbed = scrubSecrets(JSON.stringify(config), collectSecrets(config));
    expect(scrubbed).toBe('{"transport":{"type":"ftp","password":"[redacted]","tls":{"passphrase":"[redacted]"}}}');
  });

  it('REDACT_PATHS covers each secret key at depth 0, 1 and 2', () => {
    for (const key of ['password', 'passphrase', 'privateKey', 'refreshToken', 'accessToken', 'appSecret', 'secretAccessKey', 'sessionToken']) {
      expect(REDACT_PATHS).toEqual(expect.arrayContaining([key, `*.${key}`, `*.*.${key}`]));
    }
    expect(REDACT_PATHS).toHaveLength(24);
  });
});
