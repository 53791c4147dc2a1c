/**
 * `dropbox`: uploads through the official SDK (`files/upload`, or an upload session for big files).
 *
 * Where the SDK falls short (SPEC §9) this module makes up for it:
 * - tokens come from an AccessTokenKeeper (dropboxAuth.ts): refresh token in the POST body, one
 *   refresh at a time however many uploads need it, refreshed ahead of the advertised expiry;
 * - a 401 `expired_access_token` before that expiry (revoked server-side, clock skew) gets one
 *   refresh and one more try here, which the SDK does not do;
 * - 429 becomes RATE_LIMITED with the server's `Retry-After`, for the uploader's retry policy;
 * - every request carries the upload's AbortSignal, and `baseUrl` reroutes every host.
 * Dropbox commits a file atomically by itself, so there is no temporary name to rename.
 */
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs/promises';
import { Dropbox, DropboxResponseError, type files } from 'dropbox';
import type { DropboxTransportConfig } from '../config/schema.js';
import type { BandwidthLimiter } from '../shared/bandwidth.js';
import type { Logger } from '../shared/logger.js';
import { PushtaskError, type PushtaskErrorCode, errorMessage } from '../shared/errors.js';
import {
  type AccessTokenKeeper,
  type FetchFn,
  networkCause,
  oauthUrls,
  parseRetryAfter,
  reauthHint,
  sharedTokenKeeper,
} from './dropboxAuth.js';
import { readAt } from '../shared/fileRange.js';
import { LINK_DEFAULTS, Lifeline } from './lifeline.js';
import { RateGate } from './rateGate.js';
import { joinRemote, joinRemoteDir } from './remotePath.js';
import type { RemoteEntry, Transport, TransportCapabilities, TransportContext, UploadRequest, UploadResult } from './types.js';

const MiB = 1024 * 1024;
/** The API takes at most 150 MiB in one request. */
export const DROPBOX_SINGLE_UPLOAD_MAX_BYTES = 150 * MiB;
/** A multiple of 4 MiB, as Dropbox recommends for sessions; small enough to resend cheaply. */
export const DROPBOX_CHUNK_BYTES = 8 * MiB;

export interface DropboxTransportOptions {
  /**
   * Files up to this size go up in one `files/upload` call, read into memory; bigger ones go
   * through an upload session.
   * @default 150 MiB
   */
  singleUploadMaxBytes?: number;
  /**
   * Bytes per upload-session request (at most 150 MiB).
   * @default 8 MiB
   */
  chunkBytes?: number;
  /** The fetch every request goes through. @default globalThis.fetch */
  fetch?: FetchFn;
  /** The access-token keeper. @default one shared by every transport with the same credentials */
  tokens?: AccessTokenKeeper;
  /** Where a 429's pause is kept. @default one per token keeper (per account) */
  gate?: RateGate;
}

/** One gate per account (the token keeper is shared per credentials): a 429 pauses every lane. */
const gates = new WeakMap<AccessTokenKeeper, RateGate>();
function gateOf(tokens: AccessTokenKeeper): RateGate {
  let gate = gates.get(tokens);
  if (!gate) gates.set(tokens, (gate = new RateGate()));
  return gate;
}

/** A request of an upload session refused with 429 is sent again after the pause, this many times at most. */
const SESSION_RATE_LIMIT_TRIES = 5;
/** Request bodies are handed to fetch in slices this big, each one proof that the upload moves. */
const BODY_SLICE_BYTES = 64 * 1024;

type CommitInfo = files.CommitInfo;
type FileMetadata = files.FileMetadata;

/** Dropbox's API has no append: append-mode files go up whole (README). */
export const DROPBOX_CAPABILITIES: TransportCapabilities = { append: false, list: true, read: true, maxLanes: 64 };

export class DropboxTransport implements Transport {
  readonly description: string;
  readonly #remoteDir: string;
  readonly #baseUrl: string | undefined;
  readonly #appKey: string | undefined;
  readonly #fetch: FetchFn;
  readonly #tokens: AccessTokenKeeper;
  readonly #singleMax: number;
  readonly #chunk: number;
  readonly #logger: Logger;
  readonly #bandwidth: BandwidthLimiter | null;
  readonly #gate: RateGate;
  readonly #stallMs: number;

  constructor(config: DropboxTransportConfig, context: TransportContext, options: DropboxTransportOptions = {}) {
    // Dropbox paths are absolute; '' and 'pushtask' mean '/' and '/pushtask'.
    this.#remoteDir = `/${config.remoteDir.split('/').filter(Boolean).join('/')}`;
    this.#baseUrl = config.baseUrl?.replace(/\/+$/, '');
    this.#appKey = config.appKey;
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#logger = context.logger;
    this.#bandwidth = context.bandwidth ?? null;
    this.#singleMax = Math.min(options.singleUploadMaxBytes ?? DROPBOX_SINGLE_UPLOAD_MAX_BYTES, DROPBOX_SINGLE_UPLOAD_MAX_BYTES);
    this.#chunk = Math.min(options.chunkBytes ?? DROPBOX_CHUNK_BYTES, DROPBOX_SINGLE_UPLOAD_MAX_BYTES);
    if (!(this.#chunk > 0)) throw new RangeError(`chunkBytes must be positive, got ${options.chunkBytes}`);
    this.#tokens =
      options.tokens ??
      sharedTokenKeeper({
        appKey: config.appKey,
        appSecret: config.appSecret,
        refreshToken: config.refreshToken,
        accessToken: config.accessToken,
        tokenUrl: oauthUrls(this.#baseUrl).token,
        fetch: this.#fetch,
        logger: context.logger,
      });
    this.#gate = options.gate ?? gateOf(this.#tokens);
    this.#stallMs = (context.link ?? LINK_DEFAULTS).stallTimeoutMs;
    this.description = `dropbox:${this.#remoteDir}${this.#baseUrl ? ` (via ${safeOrigin(this.#baseUrl)})` : ''}`;
  }

  /**
   * Gets a valid access token (a refresh proves app key and refresh token) and asks Dropbox to
   * echo a string with it (`check/user`), which proves the token and the network path. An app
   * without the `account_info.read` scope cannot call that route; the token was still accepted,
   * so that counts as connected.
   */
  async connect(signal: AbortSignal): Promise<void> {
    try {
      await this.#call(signal, 'CONNECT_FAILED', `Connecting to ${this.description}`, (client) => client.checkUser({ query: 'pushtask' }));
    } catch (error) {
      if (dropboxTag(error) === 'missing_scope') return;
      throw error;
    }
  }

  async upload({ localPath, remotePath, mtime, signal, onProgress }: UploadRequest): Promise<UploadResult> {
    signal.throwIfAborted();
    const path = joinRemote(this.#remoteDir, remotePath);
    const commit: CommitInfo = {
      path,
      mode: { '.tag': 'overwrite' },
      autorename: false,
      // A logger may upload every few seconds: don't notify the account's desktop clients each time.
      mute: true,
      strict_conflict: false,
      ...clientModified(mtime),
    };
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(localPath, 'r');
    } catch (error) {
      throw new PushtaskError('UPLOAD_FAILED', `Cannot read ${localPath}: ${errorMessage(error)}`, { cause: error });
    }
    try {
      const { size } = await handle.stat();
      const hasher = new DropboxContentHasher();
      const stored =
        size <= this.#singleMax
          ? await this.#uploadWhole(handle, size, commit, hasher, signal)
          : await this.#uploadInSession(handle, size, commit, hasher, signal, onProgress);
      // Both sides must agree before the spool lets go of the snapshot.
      const expectedHash = hasher.digest();
      if (stored.size !== size || (stored.content_hash !== undefined && stored.content_hash !== expectedHash)) {
        throw new PushtaskError(
          'UPLOAD_FAILED',
          `Upload of ${path}: Dropbox stored ${stored.size} bytes (content hash ${stored.content_hash ?? 'none'}), expected ${size} bytes (${expectedHash})`,
        );
      }
      return { bytes: size };
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  /**
   * Nothing to hang up: HTTP connections are pooled by fetch. The token is kept for the next connect.
   * Node's fetch (undici) keeps connections alive between requests and turns Nagle's algorithm off
   * on every socket it opens (TCP_NODELAY), so small requests neither wait for ACKs nor reconnect.
   */
  async close(): Promise<void> {}

  async #uploadWhole(handle: fs.FileHandle, size: number, commit: CommitInfo, hasher: DropboxContentHasher, signal: AbortSignal): Promise<FileMetadata> {
    const contents = await readAt(handle, 0, size);
    hasher.update(contents);
    const content_hash = hasher.digest();
    const response = await this.#call(signal, 'UPLOAD_FAILED', `Upload of ${commit.path}`, (client) =>
      client.filesUpload({ ...commit, content_hash, contents }),
    );
    return response.result;
  }

  /**
   * start → append_v2 … → finish. Each request carries the hash of its own chunk, so Dropbox
   * refuses a chunk damaged on the way; the file appears under its name only at `finish`.
   */
  async #uploadInSession(
    handle: fs.FileHandle,
    size: number,
    commit: CommitInfo,
    hasher: DropboxContentHasher,
    signal: AbortSignal,
    onProgress?: (bytesSent: number) => void,
  ): Promise<FileMetadata> {
    const what = `Upload of ${commit.path} (upload session)`;
    const chunkAt = async (offset: number) => {
      signal.throwIfAborted();
      const chunk = await readAt(handle, offset, Math.min(this.#chunk, size - offset));
      hasher.update(chunk);
      return chunk;
    };

    const first = await chunkAt(0);
    const started = await this.#call(signal, 'UPLOAD_FAILED', what, (client) =>
      client.filesUploadSessionStart({ close: false, content_hash: dropboxContentHash(first), contents: first }),
    );
    const session_id = started.result.session_id;
    let offset = first.length;
    onProgress?.(offset);
    this.#logger.debug(`Dropbox upload session for ${commit.path}: ${size} bytes in chunks of ${this.#chunk}`);

    while (size - offset > this.#chunk) {
      const chunk = await chunkAt(offset);
      const cursor = { session_id, offset };
      await this.#call(
        signal,
        'UPLOAD_FAILED',
        what,
        (client) => client.filesUploadSessionAppendV2({ cursor, close: false, content_hash: dropboxContentHash(chunk), contents: chunk }),
        { rateLimitTries: SESSION_RATE_LIMIT_TRIES },
      );
      offset += chunk.length;
      onProgress?.(offset);
    }

    const last = await chunkAt(offset);
    const cursor = { session_id, offset };
    const finished = await this.#call(
      signal,
      'UPLOAD_FAILED',
      what,
      (client) => client.filesUploadSessionFinish({ cursor, commit, content_hash: dropboxContentHash(last), contents: last }),
      { rateLimitTries: SESSION_RATE_LIMIT_TRIES },
    );
    return finished.result;
  }

  /**
   * One API call with a valid token. A 401 `expired_access_token` gets exactly one refresh and
   * one more try: the request was refused before it did anything, so repeating it is safe.
   * `op` builds its arguments afresh each time (the SDK deletes `contents` from the object it is given).
   */
  async #call<T>(
    signal: AbortSignal,
    failCode: PushtaskErrorCode,
    what: string,
    op: (client: Dropbox) => Promise<T>,
    { rateLimitTries = 1 }: { rateLimitTries?: number } = {},
  ): Promise<T> {
    for (let tries = 1; ; tries += 1) {
      try {
        return await this.#callOnce(signal, failCode, what, op);
      } catch (error) {
        // A 429 was refused before it did anything: an upload session (which may have sent GBs)
        // waits out the pause with every other request and sends the same request again.
        if (!(error instanceof PushtaskError) || error.code !== 'RATE_LIMITED' || tries >= rateLimitTries || signal.aborted) throw error;
        this.#logger.info(`${error.message}; ${what} waits and sends the same request again (try ${tries + 1} of ${rateLimitTries})`);
      }
    }
  }

  async #callOnce<T>(signal: AbortSignal, failCode: PushtaskErrorCode, what: string, op: (client: Dropbox) => Promise<T>): Promise<T> {
    let token = await this.#tokens.get(signal);
    await this.#gate.wait(signal);
    try {
      return await op(this.#client(token, signal));
    } catch (error) {
      if (signal.aborted || dropboxTag(error) !== 'expired_access_token' || !this.#tokens.canRefresh) {
        throw this.#rateLimited(this.#describe(error, failCode, what, signal));
      }
      this.#logger.info('Dropbox says the access token expired before its time; refreshing it and trying once more');
      token = await this.#tokens.renew(token, signal);
    }
    await this.#gate.wait(signal);
    try {
      return await op(this.#client(token, signal));
    } catch (error) {
      throw this.#rateLimited(this.#describe(error, failCode, what, signal));
    }
  }

  /** A 429's pause holds back every request of this account (rateGate.ts). */
  #rateLimited(error: unknown): unknown {
    if (error instanceof PushtaskError && error.code === 'RATE_LIMITED') this.#gate.pause(error.retryAfterMs ?? 1000);
    return error;
  }

  /**
   * A client per call is cheap (the SDK just copies its route table) and binds the call's token
   * and AbortSignal: the SDK has no way to pass either per request.
   */
  #client(token: string, signal: AbortSignal): Dropbox {
    const fetchImpl = this.#fetch;
    const baseUrl = this.#baseUrl;
    const bandwidth = this.#bandwidth;
    const stallMs = this.#stallMs;
    const fetch = async (url: string, init: RequestInit) => {
      // bandwidthLimit: a request body leaves whole once the bucket has paid for it, so the limit
      // holds on average over a chunk (DROPBOX_CHUNK_BYTES), not within it. Paid before the
      // lifeline starts: waiting for the bucket is not a stalled connection.
      if (bandwidth) await bandwidth.take(bodyBytes(init.body), signal);
      // Each request is its own HTTP exchange: a lifeline per request fails it when its socket
      // goes silent (no body slice taken, no answer) for stallTimeoutMs, and on the call's abort.
      const life = new Lifeline(`${safeOrigin(rerouteUrl(url, baseUrl))}`);
      return life.run(
        signal,
        `Dropbox request ${new URL(url).pathname}`,
        async (requestSignal, progress) => {
          const response = await fetchImpl(rerouteUrl(url, baseUrl), { ...init, ...sliced(init, progress), signal: requestSignal });
          progress();
          const body = Buffer.from(await response.arrayBuffer());
          return withBufferMethod(new Response(body.length ? body : null, { status: response.status, statusText: response.statusText, headers: response.headers }));
        },
        { stallMs },
      );
    };
    return new Dropbox({ accessToken: token, fetch });
  }

  #describe(error: unknown, failCode: PushtaskErrorCode, what: string, signal: AbortSignal): unknown {
    if (signal.aborted) return signal.reason ?? error;
    if (error instanceof PushtaskError) return error;
    if (error instanceof DropboxResponseError) return describeResponseError(error, failCode, what, this.#appKey, this.#tokens.canRefresh);
    return new PushtaskError(failCode, `${what} failed: cannot reach Dropbox (${networkCause(error)})`, { cause: error });
  }

  /** `files/list_folder` (+ `/continue`). The mtime is `client_modified`: the source's mtime, as pushtask uploads it. */
  async list(remoteDir: string, signal: AbortSignal): Promise<RemoteEntry[]> {
    const folder = joinRemoteDir(this.#remoteDir, remoteDir);
    const what = `Listing ${folder}`;
    // The API spells the root folder ''.
    let page = (await this.#read(signal, what, (client) => client.filesListFolder({ path: folder === '/' ? '' : folder }))).result;
    const entries: RemoteEntry[] = [];
    for (;;) {
      for (const entry of page.entries) {
        if (entry['.tag'] === 'file') {
          entries.push({ name: entry.name, kind: 'file', size: entry.size, mtime: new Date(entry.client_modified) });
        } else if (entry['.tag'] === 'folder') {
          entries.push({ name: entry.name, kind: 'dir', size: 0, mtime: new Date(Number.NaN) });
        }
      }
      if (!page.has_more) return entries;
      const cursor = page.cursor;
      page = (await this.#read(signal, what, (client) => client.filesListFolderContinue({ cursor }))).result;
    }
  }

  async read(remotePath: string, maxBytes: number, signal: AbortSignal): Promise<Buffer> {
    const file = joinRemote(this.#remoteDir, remotePath);
    const { result } = await this.#read(signal, `Reading ${file}`, (client) => client.filesDownload({ path: file }));
    const data = (result as { fileBinary?: unknown }).fileBinary;
    if (!Buffer.isBuffer(data)) throw new PushtaskError('REMOTE_READ_FAILED', `Reading ${file}: Dropbox sent no file content`);
    if (data.length > maxBytes) throw new PushtaskError('REMOTE_READ_FAILED', `Reading ${file}: it holds ${data.length} bytes, more than the ${maxBytes} expected`);
    return data;
  }

  /** A read-only call: a refusal (409 not_found, …) is a failed read, not a failed upload. */
  async #read<T>(signal: AbortSignal, what: string, op: (client: Dropbox) => Promise<T>): Promise<T> {
    try {
      return await this.#call(signal, 'REMOTE_READ_FAILED', what, op);
    } catch (error) {
      if (error instanceof PushtaskError && error.code === 'UPLOAD_FAILED') {
        throw new PushtaskError('REMOTE_READ_FAILED', error.message, { cause: error.cause });
      }
      throw error;
    }
  }
}

/**
 * A request body as a stream fetch pulls slice by slice, each pull a sign that the socket takes
 * bytes (for the stall clock); the length stays declared, so nothing changes on the wire.
 */
function sliced(init: RequestInit, progress: () => void): Partial<RequestInit> & { duplex?: 'half' } {
  const { body } = init;
  if (!(body instanceof Uint8Array) || body.length <= BODY_SLICE_BYTES) return {};
  const headers = new Headers(init.headers);
  headers.set('content-length', String(body.length));
  let offset = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      progress();
      if (offset >= body.length) return controller.close();
      controller.enqueue(body.subarray(offset, (offset += BODY_SLICE_BYTES)));
    },
  });
  return { body: stream, duplex: 'half', headers };
}

/** The SDK reads downloads with node-fetch's `res.buffer()`, which the built-in fetch lacks. */
function withBufferMethod(response: Response): Response {
  if (!('buffer' in response)) {
    Object.defineProperty(response, 'buffer', { value: async () => Buffer.from(await response.arrayBuffer()) });
  }
  return response;
}

/** Maps Dropbox's HTTP answers onto the error codes the retry policy knows. */
export function describeResponseError(
  error: DropboxResponseError<unknown>,
  failCode: PushtaskErrorCode,
  what: string,
  appKey: string | undefined,
  canRefresh: boolean,
): PushtaskError {
  const { status } = error;
  const summary = errorSummary(error.error);
  const tag = dropboxTag(error);
  const retryAfterMs = retryAfterOf(error);
  const hint = retryAfterMs !== undefined ? { retryAfterMs } : {};
  const fail = (code: PushtaskErrorCode, message: string) => new PushtaskError(code, `${what} failed: ${message}`, { cause: error, ...hint });

  if (status === 401) {
    if (tag === 'missing_scope') {
      const scope = (error.error as { error?: { required_scope?: unknown } }).error?.required_scope;
      return fail(
        'AUTH_FAILED',
        `the Dropbox app lacks the permission ${typeof scope === 'string' ? `"${scope}"` : 'this needs'} (missing_scope). ` +
          `Tick it on the app's Permissions tab in the Dropbox App Console, then ${reauthHint(appKey).replace(/^Run/, 'run')}`,
      );
    }
    if (tag === 'expired_access_token' && !canRefresh) {
      return fail('AUTH_FAILED', `the access token has expired and cannot be renewed without refreshToken + appKey. ${reauthHint(appKey)}`);
    }
    return fail('AUTH_FAILED', `Dropbox rejected the access token (${summary}). ${reauthHint(appKey)}`);
  }
  if (status === 429 || /too_many_write_operations|too_many_requests/.test(summary)) {
    return fail('RATE_LIMITED', `Dropbox is rate limiting (${status} ${summary})${retryAfterMs !== undefined ? `; retry after ${retryAfterMs} ms` : ''}`);
  }
  if (status === 403) return fail('AUTH_FAILED', `Dropbox denied access (${summary})`);
  if (status === 409) return fail('UPLOAD_FAILED', `Dropbox refused it (${summary})`);
  if (status === 400) return fail('UPLOAD_FAILED', `Dropbox rejected the request as malformed (400: ${summary})`);
  return fail(failCode, `Dropbox answered ${status} (${summary})`);
}

/** The `.tag` of an API error (`expired_access_token`, `path`, …), if the body has one. */
export function dropboxTag(error: unknown): string | undefined {
  const target = error instanceof PushtaskError ? error.cause : error;
  if (!(target instanceof DropboxResponseError)) return undefined;
  const body = target.error as { error?: { '.tag'?: unknown } } | string | undefined;
  const tag = typeof body === 'object' ? body?.error?.['.tag'] : undefined;
  return typeof tag === 'string' ? tag : undefined;
}

function errorSummary(body: unknown): string {
  if (body && typeof body === 'object') {
    const summary = (body as { error_summary?: unknown }).error_summary;
    if (typeof summary === 'string') return summary;
    return JSON.stringify(body).slice(0, 300);
  }
  // Dropbox answers 400s (and some 5xx) with plain text.
  return String(body ?? '').trim().split('\n')[0]?.slice(0, 300) || 'no details';
}

/** `Retry-After`, or the rate-limit body's `retry_after` (seconds) when the header is missing. */
function retryAfterOf(error: DropboxResponseError<unknown>): number | undefined {
  const headers = error.headers as { get?: (name: string) => string | null } | undefined;
  const fromHeader = typeof headers?.get === 'function' ? parseRetryAfter(headers.get('retry-after')) : undefined;
  if (fromHeader !== undefined) return fromHeader;
  const body = error.error as { error?: { retry_after?: unknown } } | undefined;
  const seconds = typeof body === 'object' ? body?.error?.retry_after : undefined;
  return typeof seconds === 'number' && seconds >= 0 ? seconds * 1000 : undefined;
}

/** Every SDK URL (api, content, notify hosts) → `<baseUrl>/2/<route>`; OAuth → `<baseUrl>/oauth2/…`. */
export function rerouteUrl(url: string, baseUrl: string | undefined): string {
  if (!baseUrl) return url;
  const parsed = new URL(url);
  return `${baseUrl.replace(/\/+$/, '')}${parsed.pathname}${parsed.search}`;
}

/**
 * Dropbox wants whole seconds, `2026-11-23T04:05:06Z`; milliseconds get a 400. Dates it cannot
 * represent are left out (Dropbox then records the upload time).
 */
export function dropboxTimestamp(date: Date): string | undefined {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) return undefined;
  const iso = new Date(Math.floor(ms / 1000) * 1000).toISOString();
  return /^\d{4}-/.test(iso) ? `${iso.slice(0, 19)}Z` : undefined;
}

function clientModified(mtime: Date): { client_modified?: string } {
  const stamp = dropboxTimestamp(mtime);
  return stamp ? { client_modified: stamp } : {};
}

const BLOCK_BYTES = 4 * MiB;

/**
 * Dropbox's content hash: SHA-256 over the concatenated SHA-256 digests of each 4 MiB block.
 * Fed incrementally, in chunks of any size.
 */
export class DropboxContentHasher {
  readonly #overall = createHash('sha256');
  #block: Hash = createHash('sha256');
  #blockFill = 0;
  #digest: string | undefined;

  update(data: Uint8Array): void {
    let offset = 0;
    while (offset < data.length) {
      const take = Math.min(BLOCK_BYTES - this.#blockFill, data.length - offset);
      this.#block.update(data.subarray(offset, offset + take));
      this.#blockFill += take;
      offset += take;
      if (this.#blockFill === BLOCK_BYTES) this.#finishBlock();
    }
  }

  /** The hash of everything fed so far; feeding more after this is a programming error. */
  digest(): string {
    if (this.#digest === undefined) {
      if (this.#blockFill > 0) this.#finishBlock();
      this.#digest = this.#overall.digest('hex');
    }
    return this.#digest;
  }

  #finishBlock(): void {
    this.#overall.update(this.#block.digest());
    this.#block = createHash('sha256');
    this.#blockFill = 0;
  }
}

export function dropboxContentHash(data: Uint8Array): string {
  const hasher = new DropboxContentHasher();
  hasher.update(data);
  return hasher.digest();
}

/** The base URL for a description: no user:password, no path. */
function safeOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'a custom base URL';
  }
}

/** Bytes of a request body as the SDK sends them (a Buffer for uploads, a string for RPC calls). */
function bodyBytes(body: RequestInit['body']): number {
  if (typeof body === 'string') return Buffer.byteLength(body);
  if (body instanceof ArrayBuffer) return body.byteLength;
  if (ArrayBuffer.isView(body)) return body.byteLength;
  return 0;
}
