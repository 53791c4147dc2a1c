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
  /** Called with the bytes sent so far, where the protocol reports it cheaply; never required. */
  onProgress?: (bytesSent: number) => void;
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
  /**
   * Lists a folder below the remote folder (`''` = the remote folder itself), confined like
   * upload paths. Needs a connection. Optional: `pushtask monitor` needs it.
   */
  list?(remoteDir: string, signal: AbortSignal): Promise<RemoteEntry[]>;
  /** Reads a small file below the remote folder (at most `maxBytes`, else it fails). Optional. */
  read?(remotePath: string, maxBytes: number, signal: AbortSignal): Promise<Buffer>;
}

/** One entry of a remote folder listing. */
export interface RemoteEntry {
  name: string;
  kind: 'file' | 'dir' | 'other';
  size: number;
  /** The modification time the server reports (pushtask keeps the source file's mtime on upload). */
  mtime: Date;
}

export interface TransportContext {
  logger: Logger;
  /** A private folder (the spool) for what a transport must remember, e.g. host keys pinned on first use. */
  stateDir: string;
}
