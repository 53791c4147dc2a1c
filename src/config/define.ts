/**
 * `defineConfig`, alone in a module with no run-time imports: config files loaded by the CLI get
 * their `import { defineConfig } from 'pushtask'` resolved to this file (load.ts), so a config in
 * /etc/pushtask works without pushtask installed beside it, and loading it stays fast.
 */
import type { PushtaskConfig } from './schema.js';

/** Identity with types, for config files: `export default defineConfig({...})`. */
export function defineConfig(config: PushtaskConfig): PushtaskConfig {
  return config;
}
