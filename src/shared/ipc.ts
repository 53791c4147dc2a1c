/**
 * Messages between master and subtask over the child_process IPC channel. Plain data only:
 * errors travel as { code, message }.
 */
import type { ResolvedConfig } from '../config/resolve.js';
import type { LogLevel } from '../config/schema.js';
import type { HealthDocument } from '../health/document.js';
import type { ErrorInfo } from './errors.js';

export interface UploadedEvent {
  /** The local source file. */
  file: string;
  /** Path below the remote folder. */
  remotePath: string;
  bytes: number;
  /** Time the upload took. */
  ms: number;
}

export interface UploadFailedEvent {
  file: string;
  error: ErrorInfo;
  /** Always true while the agent runs: pushtask retries until stopped. */
  willRetry: boolean;
}

export interface ConnectedEvent {
  target: string;
}

export interface DisconnectedEvent {
  reason: 'dead-time' | 'error' | 'stop';
  detail?: string;
}

export interface HeartbeatEvent {
  file: string;
  nextDueSec: number;
}

/** Bytes of an upload sent so far: only for uploads that last, at most a few per second each. */
export interface ProgressEvent {
  file: string;
  remotePath: string;
  /** Bytes sent so far. */
  bytes: number;
  /** Size of the snapshot being uploaded. */
  total: number;
  /** Time since the upload started. */
  ms: number;
}

/** Events the subtask forwards to the master. */
export interface SubtaskEventMap {
  uploaded: UploadedEvent;
  'upload-failed': UploadFailedEvent;
  connected: ConnectedEvent;
  disconnected: DisconnectedEvent;
  heartbeat: HeartbeatEvent;
  progress: ProgressEvent;
  /** The agent's health (the status file's document), sent when it changed, at most once an interval. */
  health: HealthDocument;
}

export type SubtaskEventName = keyof SubtaskEventMap;

export type MasterToSubtask =
  | { type: 'init'; config: ResolvedConfig }
  | { type: 'stop' }
  | { type: 'log-level'; level: LogLevel };

export type SubtaskToMaster =
  | { type: 'ready'; pid: number }
  | { type: 'fatal'; error: ErrorInfo }
  | { [K in SubtaskEventName]: { type: 'event'; name: K; payload: SubtaskEventMap[K] } }[SubtaskEventName];
