export { defineConfig, resolveConfig, ConfigError } from './resolve.js';
export type { ResolvedConfig, ResolvedWatch, ResolvedWatchDir, ResolvedWatchFile, WriteMode } from './resolve.js';
export { loadConfigFile, type LoadedConfig } from './load.js';
export type { PushtaskConfig, TransportConfig, BurstSettings, RetryConfig, LogLevel } from './schema.js';
