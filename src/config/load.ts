/** Loads a TypeScript (or JavaScript) config file at run time and validates it. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createJiti } from 'jiti';
import { PushtaskError, errorMessage } from '../shared/errors.js';
import { resolveConfig, type ResolvedConfig } from './resolve.js';
import type { PushtaskConfig } from './schema.js';

export interface LoadedConfig {
  /** The file's default export, as written. */
  config: PushtaskConfig;
  /** Relative paths in a config file are relative to the file's own folder. */
  cwd: string;
  resolved: ResolvedConfig;
  file: string;
}

export interface LoadOptions {
  /**
   * Top-level fields used where the file has none (before validation). `pushtask monitor` needs
   * only `transport`, so it fills in a `watch` list for a server-side file that has none.
   */
  defaults?: Partial<PushtaskConfig>;
}

/** The module a config's `import … from 'pushtask'` gets: `define.ts` from src, `define.js` from dist. */
function defineModule(): string {
  const js = fileURLToPath(new URL('./define.js', import.meta.url));
  return fs.existsSync(js) ? js : js.replace(/\.js$/, '.ts');
}

export async function loadConfigFile(file: string, options: LoadOptions = {}): Promise<LoadedConfig> {
  const absolute = path.resolve(file);
  if (!fs.existsSync(absolute)) {
    throw new PushtaskError('CONFIG_LOAD_FAILED', `Config file ${absolute} does not exist; check the path`);
  }
  let module: Record<string, unknown>;
  try {
    const jiti = createJiti(import.meta.url, { moduleCache: false, fsCache: false, alias: { pushtask: defineModule() } });
    module = await jiti.import(absolute);
  } catch (error) {
    throw describeLoadError(absolute, error);
  }
  if (!module || typeof module !== 'object' || !('default' in module)) {
    const names = module && typeof module === 'object' ? Object.keys(module) : [];
    const has = names.length ? `it exports ${names.map((name) => `\`${name}\``).join(', ')} but no default` : 'it exports nothing';
    throw new PushtaskError(
      'CONFIG_LOAD_FAILED',
      `Config file ${absolute} has no default export (${has}); write \`export default defineConfig({ ... })\``,
    );
  }
  const exported = module.default;
  const cwd = path.dirname(absolute);
  const config = options.defaults && isPlainObject(exported) ? { ...options.defaults, ...withoutUndefined(exported) } : exported;
  const resolved = resolveConfig(config, { cwd, source: absolute });
  return { config: config as PushtaskConfig, cwd, resolved, file: absolute };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function withoutUndefined(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, inner]) => inner !== undefined));
}

/**
 * What went wrong while loading, said exactly: a syntax error with its `file:line:column`, a
 * missing import by name, `defineConfig` used without its import. jiti's own messages hide the place in a second
 * line or in the stack, which the CLI did not show without `--debug`.
 */
export function describeLoadError(file: string, error: unknown): PushtaskError {
  const message = errorMessage(error);
  const fail = (text: string) => new PushtaskError('CONFIG_LOAD_FAILED', text, { cause: error });
  // jiti (babel) reports "ParseError: <what>  \n <file>:<line>:<column>".
  const parse = /^(?:ParseError|SyntaxError): (.*?)\s*(?:\n\s*(\S+:\d+:\d+))?\s*$/s.exec(message);
  if (parse) return fail(`Syntax error in ${parse[2] ?? file}: ${parse[1]!.trim()}`);
  if ((error as NodeJS.ErrnoException)?.code === 'MODULE_NOT_FOUND' || (error as NodeJS.ErrnoException)?.code === 'ERR_MODULE_NOT_FOUND') {
    const missing = /Cannot find (?:module|package) '([^']+)'/.exec(message)?.[1] ?? 'a module';
    return fail(`Config file ${file} imports '${missing}', which cannot be found from ${path.dirname(file)}; install it there or remove the import`);
  }
  // A run-time error in the file. (Its stack's line numbers are those of the transpiled code: not shown.)
  if (error instanceof ReferenceError && /^defineConfig is not defined/.test(message)) {
    return fail(`Config file ${file} calls defineConfig without importing it: add \`import { defineConfig } from 'pushtask';\` at the top`);
  }
  return fail(`Config file ${file} failed while it was loaded: ${message.split('\n')[0]} (--debug shows where)`);
}
