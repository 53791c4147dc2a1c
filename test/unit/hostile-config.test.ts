/**
 * Config fuzz: every field of the schema, found by walking the zod schema itself (a field added
 * tomorrow is covered without touching this file), is given a value of the wrong type in turn,
 * on top of a full, valid config of each transport type that is full of secrets. Each must be a
 * ConfigError naming the field's path, and no message may contain a secret.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig } from '../../src/config/resolve.js';
import { configSchema } from '../../src/config/schema.js';
import { collectSecrets } from '../../src/shared/secrets.js';
import { recordCount } from '../helpers/hostileCounts.js';

const SECRETS = {
  password: 'PW-hostile-config-7f3a9c',
  passphrase: 'PASSPHRASE-hostile-2b8e1d',
  privateKey: '-----BEGIN OPENSSH PRIVATE KEY-----\nKEYMATERIAL-hostile-5c6d\n-----END OPENSSH PRIVATE KEY-----\n',
  refreshToken: 'REFRESH-hostile-9a0b1c',
  accessToken: 'ACCESS-hostile-3d4e5f',
  appSecret: 'APPSECRET-hostile-6a7b8c',
};

const common = {
  watch: [
    { file: 'data/a.csv', burstMode: { startTriggerMs: 1000, startTriggerCount: 2, expireMs: 5000 }, mode: 'append' },
    { dir: 'drop', recursive: true, stableMs: 100, usePolling: false, followSymlinks: false, mode: 'replace' },
  ],
  intervalMs: 2000,
  fsEvents: true,
  deadTimeMs: 1000,
  autoFlush: true,
  gracefulTimeoutMs: 1000,
  operationTimeoutMs: 1000,
  spoolDir: 'spool',
  heartbeat: { intervalSec: 60, name: 'logger-7' },
  archive: { afterDays: 3, toFolder: 'archive' },
  retry: { strategy: 'pysubtask', quickTries: 5, quickDelayMs: 3000, longDelayMs: 30_000, maxDelayMs: 300_000 },
  log: { dir: 'logs', level: 'info', console: true },
};

/** A valid config per transport type, with every optional field set (secrets included). */
const BASES: Record<string, Record<string, unknown>> = {
  local: { ...common, transport: { type: 'local', dir: 'out' } },
  sftp: {
    ...common,
    transport: {
      type: 'sftp',
      host: 'example.org',
      port: 22,
      username: 'u',
      password: SECRETS.password,
      remoteDir: 'in',
      transfers: 2,
      privateKey: SECRETS.privateKey,
      passphrase: SECRETS.passphrase,
      agent: false,
      hostKey: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      knownHosts: 'known_hosts',
    },
  },
  ftp: {
    ...common,
    transport: {
      type: 'ftp',
      host: 'example.org',
      port: 21,
      username: 'u',
      password: SECRETS.password,
      remoteDir: 'in',
      transfers: 2,
      secure: true,
      tls: { ca: 'ca.pem', rejectUnauthorized: true },
    },
  },
  dropbox: {
    ...common,
    transport: {
      type: 'dropbox',
      refreshToken: SECRETS.refreshToken,
      appKey: 'app-key',
      appSecret: SECRETS.appSecret,
      accessToken: SECRETS.accessToken,
      remoteDir: '/in',
      transfers: 2,
      baseUrl: 'http://127.0.0.1:9',
    },
  },
};

type Path = (string | number)[];

interface Def {
  type: string;
  innerType?: Schema;
  shape?: Record<string, Schema>;
  options?: Schema[];
  element?: Schema;
  discriminator?: string;
}
interface Schema {
  _zod: { def: Def };
}

function unwrap(schema: Schema): Schema {
  let current = schema;
  while (['default', 'optional', 'nullable', 'prefault'].includes(current._zod.def.type)) current = current._zod.def.innerType!;
  return current;
}

function get(value: unknown, path: Path): unknown {
  return path.reduce<unknown>((inner, key) => (inner as Record<string | number, unknown> | undefined)?.[key], value);
}

function withValue(base: unknown, path: Path, value: unknown): unknown {
  const copy = structuredClone(base) as Record<string, unknown>;
  const parent = get(copy, path.slice(0, -1)) as Record<string | number, unknown>;
  parent[path.at(-1)!] = value;
  return copy;
}

/** A value of a type the field does not accept. */
function wrongValue(schema: Schema): unknown {
  switch (schema._zod.def.type) {
    case 'string':
    case 'enum':
    case 'literal':
      return 42;
    case 'number':
      return 'not-a-number';
    case 'boolean':
      return 'yes';
    default:
      return 42; // objects, arrays and unions (none of which accepts a number)
  }
}

/** Picks the branch of a union the base value is an instance of (objects: by their keys). */
function branchFor(union: Schema, value: unknown): Schema | undefined {
  if (!value || typeof value !== 'object') return undefined;
  return union._zod.def.options!.map(unwrap).find((option) => {
    if (option._zod.def.type !== 'object') return false;
    const keys = Object.keys(option._zod.def.shape!);
    return Object.keys(value).every((key) => keys.includes(key)) && (!('type' in value) || get(option._zod.def.shape, ['type']) === undefined || matchesLiteral(option, value));
  });
}

function matchesLiteral(option: Schema, value: object): boolean {
  const type = unwrap(option._zod.def.shape!.type!)._zod.def as unknown as { values?: unknown[] };
  return type.values?.includes((value as { type?: unknown }).type) ?? true;
}

/** Every field path of `schema` present in `base`, with its (unwrapped) schema. */
function fields(schema: Schema, base: unknown, path: Path = []): { path: Path; schema: Schema }[] {
  const inner = unwrap(schema);
  const here = path.length ? [{ path, schema: inner }] : [];
  const value = get(base, path);
  switch (inner._zod.def.type) {
    case 'object':
      return [...here, ...Object.entries(inner._zod.def.shape!).flatMap(([key, field]) => (get(base, [...path, key]) === undefined ? [] : fields(field, base, [...path, key])))];
    case 'array':
      return [...here, ...(Array.isArray(value) ? value.flatMap((_, index) => fields(inner._zod.def.element!, base, [...path, index])) : [])];
    case 'union': {
      const branch = branchFor(inner, value);
      if (!branch) return here;
      return [...here, ...fields(branch, base, path).filter((field) => field.path.length > path.length)];
    }
    default:
      return here;
  }
}

function configError(input: unknown): ConfigError {
  try {
    resolveConfig(input, { cwd: '/srv/app' });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('config fuzz: each field wrong in turn', () => {
  it('the base configs are valid and hold every secret', () => {
    for (const base of Object.values(BASES)) expect(() => resolveConfig(base, { cwd: '/srv/app' })).not.toThrow();
    const found = new Set(Object.values(BASES).flatMap((base) => collectSecrets(base)));
    expect([...found].sort()).toEqual(Object.values(SECRETS).sort());
  });

  let total = 0;
  for (const [type, base] of Object.entries(BASES)) {
    const all = fields(configSchema as unknown as Schema, base);

    it(`${type}: the walk finds every field of the schema`, () => {
      const names = all.map((field) => field.path.join('.'));
      // Spot checks that the walk reaches nested objects, array items and union branches.
      expect(names).toEqual(expect.arrayContaining(['watch', 'watch.0.file', 'watch.0.burstMode.expireMs', 'watch.1.stableMs', 'transport.type', 'log.level', 'retry.maxDelayMs']));
      for (const key of Object.keys(base.transport as object)) expect(names).toContain(`transport.${key}`);
      expect(all.length).toBeGreaterThan(35);
    });

    it(`${type}: a wrong-typed value in any field is a ConfigError naming it, without secrets`, () => {
      const unnamed: string[] = [];
      for (const field of all) {
        const dotted = field.path.join('.');
        const wrong = wrongValue(field.schema);
        const error = configError(withValue(base, field.path, wrong));
        expect(error.code).toBe('CONFIG_INVALID');
        // The problem is reported at the field itself, not at an enclosing object or union.
        if (!error.problems.some((problem) => problem.startsWith(`${dotted}:`))) unnamed.push(`${dotted} = ${JSON.stringify(wrong)}: ${JSON.stringify(error.problems)}`);
        for (const secret of Object.values(SECRETS)) expect(error.message, dotted).not.toContain(secret);
        expect(error.message, dotted).not.toContain('KEYMATERIAL');
        total += 1;
      }
      expect(unnamed).toEqual([]);
    });

    it(`${type}: an unknown key (a typo) in any object is named, its value never shown`, () => {
      const objects = [{ path: [] as Path, schema: unwrap(configSchema as unknown as Schema) }, ...all].filter(
        (field) => field.schema._zod.def.type === 'object' || (field.schema._zod.def.type === 'union' && typeof get(base, field.path) === 'object'),
      );
      expect(objects.length).toBeGreaterThanOrEqual(8);
      for (const field of objects) {
        const target = structuredClone(get(base, field.path)) as Record<string, unknown>;
        target.pasword = SECRETS.password;
        const input = field.path.length ? withValue(base, field.path, target) : target;
        const error = configError(input);
        expect(error.message, field.path.join('.')).toContain('"pasword"');
        expect(error.message).not.toContain(SECRETS.password);
        total += 1;
      }
    });

    it(`${type}: a secret field given an object or array holding the secret never echoes it`, () => {
      for (const key of Object.keys(SECRETS)) {
        if (!(key in (base.transport as object))) continue;
        for (const wrong of [[SECRETS[key as keyof typeof SECRETS]], { value: SECRETS[key as keyof typeof SECRETS] }]) {
          const error = configError(withValue(base, ['transport', key], wrong));
          expect(error.message).toContain(`transport.${key}`);
          for (const secret of Object.values(SECRETS)) expect(error.message).not.toContain(secret);
          total += 1;
        }
      }
    });
  }

  it('records how many wrong configs were tried', async () => {
    expect(total).toBeGreaterThan(150);
    await recordCount('config.wrongConfigs', total);
  });
});

describe('config: settings valid alone that would loop, lose data or climb out together', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['a local destination inside a drop folder (delivered files dropped again, forever)', { watch: [{ dir: 'drop' }], transport: { type: 'local', dir: 'drop/out' } }, /^transport\.dir: .*inside the drop folder of watch\.0/],
    ['the default local destination inside a drop folder that is the working directory', { watch: [{ dir: '.' }] }, /^transport\.dir: \/srv\/app\/outbox is inside the drop folder/],
    ['a local destination that is the drop folder', { watch: [{ dir: 'drop' }], transport: { type: 'local', dir: 'drop' } }, /^transport\.dir: .*inside the drop folder/],
    ['a local destination that would replace a watched file with its copy', { watch: [{ file: 'data/a.csv' }], transport: { type: 'local', dir: 'data' } }, /^transport\.dir: \/srv\/app\/data holds watch\.0 .*replace the file/],
    ['a spool that is the drop folder', { watch: [{ dir: 'drop' }], spoolDir: 'drop' }, /^spoolDir: .*is the drop folder of watch\.0/],
    ['a log folder that is the drop folder', { watch: [{ dir: 'drop' }], log: { dir: 'drop' } }, /^log\.dir: .*is the drop folder of watch\.0/],
    ['an archive folder "."', { watch: [{ dir: 'drop' }], archive: { toFolder: '.' } }, /^archive\.toFolder: expected a sub-folder name/],
    ['an archive folder that climbs out', { watch: [{ dir: 'drop' }], archive: { toFolder: '../elsewhere' } }, /^archive\.toFolder: .*given "\.\.\/elsewhere"/],
    ['an absolute archive folder', { watch: [{ dir: 'drop' }], archive: { toFolder: '/var/archive' } }, /^archive\.toFolder/],
    ['a heartbeat name with a path', { watch: [{ dir: 'drop' }], heartbeat: { intervalSec: 1, name: '../../tmp/evil' } }, /^heartbeat\.name: expected a file name/],
    ['a heartbeat name ".."', { watch: [{ dir: 'drop' }], heartbeat: { intervalSec: 1, name: '..' } }, /^heartbeat\.name/],
  ];

  it.each(cases)('%s: a ConfigError naming the field', (_name, input, expected) => {
    const error = configError(input);
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatch(expected);
  });

  it('still accepts the defaults and ordinary layouts', () => {
    for (const input of [
      { watch: [{ dir: 'drop' }] }, // spool inside the drop folder (excluded from it), destination beside it
      { watch: [{ file: 'data/a.csv' }, { dir: 'data/drop' }], transport: { type: 'local', dir: 'remote' } },
      { watch: [{ dir: 'drop' }], log: { dir: 'drop/logs' }, archive: { toFolder: 'old/archive' }, heartbeat: { intervalSec: 1, name: 'logger-7.site' } },
      { watch: [{ dir: 'drop' }], transport: { type: 'local', dir: 'drop-out' } }, // a sibling sharing the prefix
      { watch: [{ dir: 'logs/watch_all_in_here' }], log: { dir: 'logs' }, spoolDir: 'logs/spool' }, // pysubtask's layout
    ]) {
      expect(() => resolveConfig(input, { cwd: '/srv/app' })).not.toThrow();
    }
  });

  it('records the count', async () => {
    await recordCount('config.badPlacements', cases.length);
  });
});
