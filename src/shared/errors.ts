/**
 * Errors carry a stable string `code` so they survive the IPC hop between subtask and master,
 * where `instanceof` does not.
 */
export type PushtaskErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_LOAD_FAILED'
  | 'UNKNOWN_FILE'
  | 'SPOOL_LOCKED'
  | 'SUBTASK_START_FAILED'
  | 'CONNECT_FAILED'
  | 'AUTH_FAILED'
  | 'HOST_KEY_REJECTED'
  | 'CERTIFICATE_REJECTED'
  /** The server refuses the configured destination itself (an S3 bucket that does not exist). */
  | 'DESTINATION_REJECTED'
  | 'UPLOAD_FAILED'
  | 'RATE_LIMITED'
  /** A connection that had worked died (closed, reset, keepalive timeout, stalled): replaced at once. */
  | 'CONNECTION_LOST'
  | 'TIMEOUT'
  | 'ABORTED'
  | 'UNSAFE_PATH'
  | 'SOURCE_MISSING'
  /** Listing or reading remote files (`pushtask monitor`) failed. */
  | 'REMOTE_READ_FAILED'
  /** An HTTP endpoint (metrics, the fleet page) could not be served: port in use, address not here. */
  | 'SERVE_FAILED';

export class PushtaskError extends Error {
  readonly code: PushtaskErrorCode;
  /** A server's hint (HTTP 429 `Retry-After`) for when to try again; the retry policy honours it. */
  readonly retryAfterMs?: number;
  constructor(code: PushtaskErrorCode, message: string, options?: { cause?: unknown; retryAfterMs?: number }) {
    super(message, options);
    this.name = 'PushtaskError';
    this.code = code;
    if (options?.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
}

/** A plain, serialisable description of an error (for IPC, events and status.json). */
export interface ErrorInfo {
  code: string;
  message: string;
}

export function toErrorInfo(error: unknown): ErrorInfo {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { code: typeof code === 'string' ? code : 'ERROR', message: error.message };
  }
  return { code: 'ERROR', message: String(error) };
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Authentication, host-key, certificate and destination errors are not cured by hammering: they go on the long schedule. */
export function isPermanentLooking(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'AUTH_FAILED' || code === 'HOST_KEY_REJECTED' || code === 'CERTIFICATE_REJECTED' || code === 'DESTINATION_REJECTED';
}
