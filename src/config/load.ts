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

export async function loadConfigFile(file: string): Promise<LoadedConfig> {
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
  const resolved = resolveConfig(exported, { cwd, source: absolute });
  return { config: exported as PushtaskConfig, cwd, resolved, file: absolute };
}
