/**
 * The one interface every transport implements. Transports know nothing of retries, dead time,
 * spools or events: the subtask's uploader wraps them with all of that.
 */
import type { Logger } from '../shared/logger.js';

export interface UploadRequest {
  /** The snapshot in the spool. */
  localPath: string;
  /** Path below the transport's remote folder, '/'-separated, already checked by `safeRemotePath`. */
  remotePath: string;
  /** Modification time of the source, kept remotely where the protocol allows. */
  mtime: Date;
  signal: AbortSignal;
}

export interface UploadResult {
  bytes: number;
}

export interface Transport {
  /** Where files go, for logs and errors; never contains a secret. */
  readonly description: string;
  /** Opens the connection (or checks the destination). Throws a PushtaskError naming host and cause. */
  connect(signal: AbortSignal): Promise<void>;
  /** Writes the file atomically under its final name: temporary name, then rename over the target. */
  upload(request: UploadRequest): Promise<UploadResult>;
  /** Closes the connection. Idempotent; never throws. A closed transport may be connected again. */
  close(): Promise<void>;
}

export interface TransportContext {
  logger: Logger;
  /** A private folder (the spool) for what a transport must remember, e.g. host keys pinned on first use. */
  stateDir: string;
}
