/**
 * The README's configuration reference has, per field, an example the schema accepts: each
 * example is put into an otherwise minimal config at its field's place and validated.
 */
import { describe, expect, it } from 'vitest';
import { EnvExample, FIELD_EXAMPLES, exampleFor, exampleSource, exampleValue } from '../../src/config/examples.js';
import { configReferenceMarkdown, configReferenceRows } from '../../src/config/reference.js';
import { configSchema } from '../../src/config/schema.js';

const TRANSPORTS: Record<string, Record<string, unknown>> = {
  local: { type: 'local', dir: 'out' },
  sftp: { type: 'sftp', host: 'h', username: 'u' },
  ftp: { type: 'ftp', host: 'h', username: 'u' },
  dropbox: { type: 'dropbox', accessToken: 'token' },
  s3: { type: 's3', bucket: 'logs', accessKeyId: 'AKID', secretAccessKey: 'secret' },
};
const WATCH_ENTRIES = [{ file: 'a.csv' }, { dir: 'drop' }];

/** `config` with `value` at `field` ('watch[].burstMode.expireMs': watch[0].burstMode.expireMs). */
function withValue(config: Record<string, unknown>, field: string, value: unknown): Record<string, unknown> {
  const copy = structuredClone(config);
  const parts = field.split('.').flatMap((part) => (part.endsWith('[]') ? [part.slice(0, -2), 0] : [part]));
  let target: Record<string | number, unknown> = copy;
  for (const [index, part] of parts.entries()) {
    if (index === parts.length - 1) {
      target[part] = value;
    } else {
      const next = target[part];
      target[part] = next && typeof next === 'object' ? next : {};
      target = target[part] as Record<string | number, unknown>;
    }
  }
  return copy;
}

/** The minimal configs an example of `row` may go into. */
function candidates(variant: string | undefined): Record<string, unknown>[] {
  const types = variant ? [variant] : Object.keys(TRANSPORTS);
  return types.flatMap((type) => WATCH_ENTRIES.map((entry) => ({ watch: [structuredClone(entry)], transport: structuredClone(TRANSPORTS[type]) })));
}

describe('configuration examples', () => {
  const rows = configReferenceRows();

  it('exist for every field, and the schema accepts each one in its place', () => {
    const failures: string[] = [];
    for (const row of rows) {
      const example = exampleFor(row.field, row.variant);
      const name = `${row.field}${row.variant ? ` (${row.variant})` : ''}`;
      if (!example.found) {
        failures.push(`${name}: no example`);
        continue;
      }
      const value = exampleValue(example.value);
      const results = candidates(row.variant).map((base) => configSchema.safeParse(withValue(base, row.field, value)));
      if (!results.some((result) => result.success)) {
        failures.push(`${name} = ${exampleSource(example.value)}: ${results[0]!.error!.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('differ from the default, so each shows something to change', () => {
    for (const row of rows) {
      const example = exampleFor(row.field, row.variant);
      if (example.found && row.default.startsWith('`')) expect(`\`${exampleSource(example.value)}\``, row.field).not.toBe(row.default);
    }
  });

  it('are all used: none is left for a field that no longer exists', () => {
    const keys = new Set(rows.flatMap((row) => [row.field, `${row.field} (${row.variant})`]));
    expect(Object.keys(FIELD_EXAMPLES).filter((key) => !keys.has(key))).toEqual([]);
  });

  it('show secrets as process.env, never as literals', () => {
    expect(exampleSource(new EnvExample('PUSHTASK_PASSWORD'))).toBe('process.env.PUSHTASK_PASSWORD');
    for (const row of rows.filter((r) => /\(secret/.test(r.description) || /^Password/.test(r.description))) {
      const example = exampleFor(row.field, row.variant);
      if (example.found && !/path|file/i.test(row.description)) expect(example.value, row.field).toBeInstanceOf(EnvExample);
    }
  });

  it('appear in the README table, which refuses a field without one', () => {
    expect(configReferenceMarkdown()).toMatch(/^\| field \| type \| default \| what it does \| example \|\n/);
    expect(configReferenceMarkdown()).toContain("| `watch[].dir` | string | **required** | A drop folder: every regular file that appears in it is uploaded once its size is stable. | `'logs/drop'` |");
  });
});
