/**
 * The configuration reference table, generated from the schema (see docs.ts).
 */
import { z } from 'zod';
import { exampleFor, exampleSource } from './examples.js';
import { configSchema } from './schema.js';

interface JsonSchema {
  type?: string | string[];
  const?: unknown;
  enum?: unknown[];
  default?: unknown;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  minimum?: number;
}


function typeOf(schema: JsonSchema): string {
  if (schema.const !== undefined) return JSON.stringify(schema.const).replace(/"/g, "'");
  if (schema.enum) return schema.enum.map((value) => `'${String(value)}'`).join(' \\| ');
  const variants = schema.anyOf ?? schema.oneOf;
  if (variants) return [...new Set(variants.map(typeOf))].join(' \\| ');
  if (Array.isArray(schema.type)) return schema.type.join(' \\| ');
  if (schema.type === 'array') return `${schema.items ? typeOf(schema.items) : 'any'}[]`;
  if (schema.type === 'integer') return 'integer';
  return schema.type ?? 'any';
}

function formatDefault(schema: JsonSchema, required: boolean): string {
  if (schema.default !== undefined) return `\`${exampleSource(schema.default).replace(/\|/g, '\\|')}\``;
  return required ? '**required**' : '—';
}

function objectVariants(schema: JsonSchema): JsonSchema[] {
  if (schema.type === 'object' && schema.properties) return [schema];
  if (schema.type === 'array' && schema.items) return objectVariants(schema.items);
  return (schema.anyOf ?? schema.oneOf ?? []).flatMap(objectVariants);
}

/** One row of the reference: a field (with its transport where fields differ per transport). */
export interface ReferenceRow {
  field: string;
  /** The transport `type` this row belongs to, for transport fields that differ per transport. */
  variant?: string;
  type: string;
  default: string;
  description: string;
}

function rows(schema: JsonSchema, prefix: string, variant?: string): ReferenceRow[] {
  const out: ReferenceRow[] = [];
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    const field = `${prefix}${name}`;
    const required = schema.required?.includes(name) ?? false;
    out.push({
      field,
      ...(variant ? { variant } : {}),
      type: typeOf(property),
      default: formatDefault(property, required),
      description: (property.description ?? '').replace(/\|/g, '\\|'),
    });
    const childPrefix = property.type === 'array' ? `${field}[].` : `${field}.`;
    for (const child of objectVariants(property)) {
      const discriminator = child.properties?.type?.const;
      const childVariant = discriminator !== undefined ? String(discriminator) : undefined;
      out.push(...rows(child, childPrefix, childVariant).filter((row) => !(childVariant && row.field === `${childPrefix}type`)));
    }
  }
  return out;
}

/** Every field of the schema, in schema order, each once. */
export function configReferenceRows(): ReferenceRow[] {
  const json = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const seen = new Set<string>();
  return rows(json, '').filter((row) => {
    const key = `${row.field} ${row.variant ?? ''}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export function configReferenceMarkdown(): string {
  const lines = configReferenceRows().map((row) => {
    const example = exampleFor(row.field, row.variant);
    if (!example.found) {
      throw new Error(`No example for the config field ${row.field}${row.variant ? ` (${row.variant})` : ''}: add one to src/config/examples.ts`);
    }
    const label = `\`${row.field}\`${row.variant ? ` (${row.variant})` : ''}`;
    return `| ${label} | ${row.type} | ${row.default} | ${row.description} | \`${exampleSource(example.value).replace(/\|/g, '\\|')}\` |`;
  });
  return ['| field | type | default | what it does | example |', '|---|---|---|---|---|', ...lines].join('\n');
}
