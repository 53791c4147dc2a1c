/** The typed events a TaskMaster emits. */
import type { HealthDocument } from '../health/document.js';
import type { BurstReason } from './burst.js';
import type {
  ConnectedEvent,
  DisconnectedEvent,
  HeartbeatEvent,
  ProgressEvent,
  UploadedEvent,
  UploadFailedEvent,
} from '../shared/ipc.js';

export type { HealthDocument };
export type { ConnectedEvent, DisconnectedEvent, HeartbeatEvent, ProgressEvent, UploadedEvent, UploadFailedEvent };

export interface SubtaskExitEvent {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the supervisor restarts the subtask (after `restartInMs`). */
  restarting: boolean;
  restartInMs?: number;
  /** The pid of the subtask that ended. */
  pid?: number;
}

export interface SubtaskStartEvent {
  pid: number;
  /** True when the supervisor restarted it after an unexpected exit. */
  restart: boolean;
}

export interface NotifyEvent {
  file: string;
  index: number;
  /** True when the sidecar was touched; false when burst mode held the data back. */
  passed: boolean;
  /** Burst-mode decision, or 'direct' for files without burst mode, 'flush' for held data released. */
  reason: BurstReason | 'direct' | 'flush';
  /** When held data will be flushed (ms since epoch). */
  pendingDueAt: number | null;
}

export interface TaskMasterEvents {
  uploaded: [UploadedEvent];
  'upload-failed': [UploadFailedEvent];
  connected: [ConnectedEvent];
  disconnected: [DisconnectedEvent];
  heartbeat: [HeartbeatEvent];
  'subtask-exit': [SubtaskExitEvent];
  'subtask-start': [SubtaskStartEvent];
  notify: [NotifyEvent];
  error: [Error];
  progress: [ProgressEvent];
  /** The subtask's health: queue, oldest pending, connection, counters (see the README's status file). */
  health: [HealthDocument];
}
