export { TaskMaster } from './master/TaskMaster.js';
export type { TaskMasterOptions, StartOptions, StopOptions } from './master/TaskMaster.js';
export type {
  TaskMasterEvents,
  NotifyEvent,
  SubtaskExitEvent,
  SubtaskStartEvent,
  UploadedEvent,
  UploadFailedEvent,
  ConnectedEvent,
  DisconnectedEvent,
  HeartbeatEvent,
  ProgressEvent,
} from './master/events.js';
export { defineConfig, resolveConfig, ConfigError, loadConfigFile } from './config/index.js';
export type { PushtaskConfig, ResolvedConfig, LoadedConfig, TransportConfig, BurstSettings, RetryConfig, LogLevel } from './config/index.js';
export { PushtaskError } from './shared/errors.js';
export type { MetricsOptions, AgentMetrics } from './metrics/agentMetrics.js';
export type { HealthDocument, HealthCounters } from './health/document.js';
export type { PushtaskErrorCode } from './shared/errors.js';
export type { Transport, UploadRequest, UploadResult, RemoteEntry } from './transports/types.js';
