/**
 * The configuration reference table, generated from the schema (see docs.ts).
 */
import { z } from 'zod';
import { configSchema } from './schema.js';

interface JsonSchema {
  type?: string;
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
  if (schema.type === 'array') return `${schema.items ? typeOf(schema.items) : 'any'}[]`;
  if (schema.type === 'integer') return 'integer';
  return schema.type ?? 'any';
}

function formatDefault(schema: JsonSchema, required: boolean): string {
  if (schema.default !== undefined) return `\`${JSON.stringify(schema.default).replace(/"/g, "'")}\``;
  return required ? '**required**' : '—';
}

function objectVariants(schema: JsonSchema): JsonSchema[] {
  if (schema.type === 'object' && schema.properties) return [schema];
  if (schema.type === 'array' && schema.items) return objectVariants(schema.items);
  return (schema.anyOf ?? schema.oneOf ?? []).flatMap(objectVariants);
}

function rows(schema: JsonSchema, prefix: string, variantLabel = ''): string[] {
  const out: string[] = [];
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    const field = `${prefix}${name}`;
    const required = schema.required?.includes(name) ?? false;
    const description = (property.description ?? '').replace(/\|/g, '\\|');
    out.push(`| \`${field}\`${variantLabel} | ${typeOf(property)} | ${formatDefault(property, required)} | ${description} |`);
    const variants = objectVariants(property);
    const childPrefix = property.type === 'array' ? `${field}[].` : `${field}.`;
    for (const variant of variants) {
      const discriminator = variant.properties?.type?.const;
      const label = discriminator !== undefined ? ` (${String(discriminator)})` : '';
      out.push(...rows(variant, childPrefix, label).filter((row) => !(label && row.startsWith(`| \`${childPrefix}type\``))));
    }
  }
  return out;
}

export function configReferenceMarkdown(): string {
  const json = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return ['| field | type | default | what it does |', '|---|---|---|---|', ...new Set(rows(json, ''))].join('\n');
}
