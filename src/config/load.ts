/** Loads a TypeScript (or JavaScript) config file at run time and validates it. */
import path from 'node:path';
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

export async function loadConfigFile(file: string, options: LoadOptions = {}): Promise<LoadedConfig> {
  const absolute = path.resolve(file);
  let exported: unknown;
  try {
    const jiti = createJiti(import.meta.url, { moduleCache: false, fsCache: false });
    exported = await jiti.import(absolute, { default: true });
  } catch (error) {
    throw new PushtaskError('CONFIG_LOAD_FAILED', `Could not load config file ${absolute}: ${errorMessage(error)}`, {
      cause: error,
    });
  }
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
