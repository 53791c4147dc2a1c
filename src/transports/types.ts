/**
 * The one interface every transport implements. Transports know nothing of retries, dead time,
 * spools or events: the subtask's uploader wraps them with all of that.
 */
import type { BandwidthLimiter } from '../shared/bandwidth.js';
import type { Logger } from '../shared/logger.js';
import type { LinkSettings } from './lifeline.js';
import type { StrayTemps } from './strayTemps.js';

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
  /**
   * Awaited with the remote temporary name before anything is written to it, by transports that
   * write one (local, SFTP, FTP), so the caller can have it removed after a crash; must not throw.
   */
  onTemporaryName?: (remoteTemp: string) => Promise<void>;
}

export interface UploadResult {
  bytes: number;
}

/** Append mode (SPEC §7): bytes of a delta snapshot written onto the end of the remote file. */
export interface AppendRequest {
  /** The delta snapshot in the spool. */
  localPath: string;
  /** First byte of `localPath` to send (the ones before it are on the server already). */
  localStart: number;
  remotePath: string;
  /** The remote file's size now, as just read: the bytes go right after it. */
  remoteSize: number;
  mtime: Date;
  signal: AbortSignal;
}

/**
 * What a transport can do, declared by its module (and equal to the optional members its
 * instances have), so code above the transports never guesses from the config's `type`.
 */
export interface TransportCapabilities {
  /** `append` (append mode's primitives) is offered. */
  readonly append: boolean;
  /** `list` and `read` are offered (`pushtask monitor`). */
  readonly list: boolean;
  readonly read: boolean;
  /** Connections worth opening in parallel at most (local: 1); config `transfers` is capped by it. */
  readonly maxLanes: number;
  /**
   * `probe` works without `connect` — and must run without it for `--dry-run`, because connecting
   * would create the destination (local). Absent: connect first.
   */
  readonly probesUnconnected?: boolean;
}

/**
 * Connection rules every network transport follows (issue 12), so the uploader can rely on them:
 * - `connect` opens exactly one connection (one login); `close` ends it.
 * - Every operation runs through the connection's `Lifeline` (lifeline.ts): when the connection
 *   closes, errors, is reset, stops answering keepalives (`TransportContext.link`) or an upload
 *   on it stalls, every operation pending on it fails at once with code CONNECTION_LOST; the
 *   uploader then replaces the connection without waiting. Other failures keep their own codes.
 * - A server's "slow down" (429, Retry-After) is a PushtaskError with `retryAfterMs`; a transport
 *   whose requests share an account-wide limit (Dropbox) also holds back its own requests,
 *   including those of uploads already running, until that time has passed.
 * How to follow them in a new transport: open one `Lifeline` (lifeline.ts) per connection and end
 * it from the library's close/error events (and `watchSilence(socket, silentDropBound(link))`
 * where keepalives make an idle connection talk); run every operation as
 * `life.run(signal, what, (signal, progress) => …, { stallMs: link.stallTimeoutMs })`, calling
 * `progress()` from the library's progress callback. HTTP transports (Dropbox, S3) have no
 * connection of their own: a Lifeline per request with the stall clock, and a `RateGate`
 * (rateGate.ts) per account. Remote temporary names come from `remoteTempName(target, agentTag)`
 * (tempNames.ts). Declare capabilities in a `<NAME>_CAPABILITIES` constant and register it in index.ts.
 */
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
   * Append mode's three primitives, offered by transports whose protocol can append (all but
   * Dropbox). The uploader decides what to send; these only do what they are told.
   */
  readonly append?: RemoteAppender;
  /**
   * Lists a folder below the remote folder (`''` = the remote folder itself), confined like
   * upload paths. Needs a connection. Optional: `pushtask monitor` needs it.
   */
  list?(remoteDir: string, signal: AbortSignal): Promise<RemoteEntry[]>;
  /** Reads a small file below the remote folder (at most `maxBytes`, else it fails). Optional. */
  read?(remotePath: string, maxBytes: number, signal: AbortSignal): Promise<Buffer>;
  /**
   * `--dry-run`: looks at the remote folder without writing anything (needs a connection, except
   * for `local`, whose connect() would create the folder). Optional.
   */
  probe?(signal: AbortSignal): Promise<RemoteFolderProbe>;
  /**
   * Proves write permission without leaving anything behind, for `pushtask watch --dry-run`;
   * resolves with what it proved. Needs a connection. Optional.
   */
  checkWrite?(signal: AbortSignal): Promise<string>;
}

/** What a transport can tell about its remote folder without writing. */
export interface RemoteFolderProbe {
  /** `missing`: the first upload creates it (every transport creates missing remote folders). */
  folder: 'exists' | 'missing';
  /** Entries in it, when it exists. */
  entries?: number;
  /** May this login write there (or create it)? null: the protocol cannot tell without writing. */
  writable: boolean | null;
  /** What the answer rests on: the folder looked at and its permissions. */
  detail: string;
}

export interface RemoteAppender {
  /** The remote file's size in bytes, or null when it does not exist. */
  size(remotePath: string, signal: AbortSignal): Promise<number | null>;
  /** `length` bytes of the remote file from `start` (fewer only if the file is shorter). */
  read(remotePath: string, start: number, length: number, signal: AbortSignal): Promise<Buffer>;
  /**
   * Writes `localPath` from `localStart` onto the end of the existing remote file. May resolve with
   * the remote file's size after the write when the transport learnt it on the way (SFTP reads it
   * from the open handle in the same round trip); the caller then skips its own size() check.
   */
  write(request: AppendRequest): Promise<number | void>;
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
  /**
   * Shared by the transports of one agent (one per upload lane; the agent passes it): a temporary
   * file a cut-off upload left on one connection is removed by whichever connects next. Without
   * it each transport keeps its own list.
   */
  strays?: StrayTemps;
  /**
   * The agent-wide `bandwidthLimit`, shared by every lane; transports `take()` bytes from it right
   * before they leave. Absent: no limit.
   */
  bandwidth?: BandwidthLimiter | null;
  /** Keepalive and stall settings (config `link`); LINK_DEFAULTS without it. */
  link?: LinkSettings;
  /**
   * Names this agent's remote temporary files: stable per (agent, file), so the next upload of
   * the same file replaces a leftover of a killed one (tempNames.ts). Without it, a random tag per process.
   */
  agentTag?: string;
}
