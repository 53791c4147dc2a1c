/**
 * A Dropbox-compatible HTTP server for tests, written from Dropbox's HTTP API documentation:
 * `/oauth2/token` (refresh_token and authorization_code grants, PKCE), `/oauth2/authorize`,
 * `/2/files/upload`, `/2/files/upload_session/{start,append_v2,finish}`, `/2/files/get_metadata`,
 * `/2/files/list_folder{,/continue}`, `/2/files/download` and `/2/check/user`. Files land in a real
 * temp folder (`root`), committed atomically (temp file, then rename). It checks what the real API
 * checks and answers the way it does: 400 with a plain text body for malformed requests
 * (`client_modified` with milliseconds included), 401 with `invalid_access_token` /
 * `expired_access_token`, 409 with a tagged `error` and `error_summary`,
 * 429 with `Retry-After`.
 *
 * Test controls: short token lifetimes, server-side expiry of issued tokens, N injected 429s (or
 * 5xx), missing scopes, slow token answers (to make concurrent refreshes overlap), and a record of
 * every request.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

const MiB = 1024 * 1024;

export interface FakeDropboxOptions {
  /** @default 'fake-app-key' */
  appKey?: string;
  /** When set, a `client_secret` sent to the token endpoint must match it. */
  appSecret?: string;
  /** Refresh tokens the server accepts. @default one random token, see `refreshToken` */
  refreshTokens?: string[];
  /** Long-lived (legacy) access tokens the server accepts forever. */
  legacyAccessTokens?: string[];
  /** `expires_in` of issued access tokens (seconds). @default 14400 (four hours, like Dropbox) */
  tokenLifetimeSec?: number;
  /** Delay before the token endpoint answers (ms). @default 0 */
  tokenDelayMs?: number;
  /** Most bytes one request may carry. @default 150 MiB, the API's limit */
  maxPayloadBytes?: number;
}

export const FAKE_APP_KEY = 'fake-app-key';

export interface RecordedRequest {
  method: string;
  /** The path without query string, e.g. '/2/files/upload'. */
  route: string;
  /** The request target exactly as received, query string included: no secret may ever show up here. */
  url: string;
  /** Headers as received, except that Authorization values are replaced by '<scheme> [redacted]'. */
  headers: Record<string, string | string[] | undefined>;
  /** Which credential authorised it: 'access#N' (N-th issued token), 'legacy#N', 'unknown', 'basic' or 'none'. */
  auth: string;
  /** The parsed `Dropbox-API-Arg` (content routes) or JSON body (RPC routes). */
  arg?: unknown;
  /** Token endpoint parameters (query string and form body), secret values replaced by '[redacted]'. */
  form?: Record<string, string>;
  bodyBytes: number;
  /** When the request's headers arrived (Date.now()). */
  receivedAt: number;
  /** 0 until answered. */
  status: number;
  /** For failed requests: the `error_summary`, the OAuth `error`, or the first line of the text. */
  error?: string;
}

export interface FaultOptions {
  /** @default 429 */
  status?: 429 | 500 | 503;
  /** Sent as `Retry-After` and, for 429, as the body's `retry_after`. @default 1 */
  retryAfterSec?: number;
  /** Set false to leave the `Retry-After` header out (the body still has `retry_after`). @default true */
  retryAfterHeader?: boolean;
  /** Routes that fail; default every `/2/` route. */
  routes?: string[];
}

interface StoredFile {
  name: string;
  id: string;
  client_modified: string;
  server_modified: string;
  rev: string;
  size: number;
  path_lower: string;
  path_display: string;
  content_hash: string;
  is_downloadable: boolean;
}

interface Session {
  file: string;
  offset: number;
  closed: boolean;
}

interface AuthCode {
  clientId: string;
  challenge?: string;
  method?: string;
  offline: boolean;
}

interface IssuedToken {
  label: string;
  /** null: never expires (legacy). */
  expiresAt: number | null;
  expiredServerSide: boolean;
}

class HttpAnswer {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {}
}

const SECRET_PARAMS = new Set(['refresh_token', 'client_secret', 'code', 'code_verifier', 'access_token']);
const COMMIT_FIELDS = ['path', 'mode', 'autorename', 'client_modified', 'mute', 'property_groups', 'strict_conflict'];
/** Dropbox's timestamp format, %Y-%m-%dT%H:%M:%SZ: whole seconds only. */
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

export class FakeDropbox {
  /** Base URL to put in the transport's `baseUrl`. */
  readonly url: string;
  /** The backing folder: Dropbox path '/a/b.txt' is `<root>/a/b.txt`. */
  readonly root: string;
  readonly appKey: string;
  /**
   * A refresh token the server accepts. Random per server, so that token keepers shared per
   * credentials in the test process never carry a token over from an earlier server on the same port.
   */
  readonly refreshToken: string;
  readonly requests: RecordedRequest[] = [];
  tokenLifetimeSec: number;
  tokenDelayMs: number;
  maxPayloadBytes: number;

  readonly #server: http.Server;
  readonly #work: string;
  readonly #appSecret: string | undefined;
  readonly #refreshTokens: Set<string>;
  readonly #tokens = new Map<string, IssuedToken>();
  readonly #codes = new Map<string, AuthCode>();
  readonly #sessions = new Map<string, Session>();
  readonly #files = new Map<string, StoredFile>();
  /** Route → the scope the app is pretended to lack for it. */
  readonly #deniedScopes = new Map<string, string>();
  readonly #faults: Array<Required<Omit<FaultOptions, 'routes'>> & { routes?: string[] }> = [];
  #issued = 0;
  #revs = 0;
  readonly #listCursors = new Map<string, { entries: unknown[]; offset: number; pageSize: number }>();
  /** Entries per `list_folder` page when the request sets no `limit`. */
  listPageSize = 500;

  private constructor(server: http.Server, root: string, work: string, options: FakeDropboxOptions) {
    this.#server = server;
    this.root = root;
    this.#work = work;
    this.appKey = options.appKey ?? FAKE_APP_KEY;
    this.#appSecret = options.appSecret;
    this.refreshToken = options.refreshTokens?.[0] ?? `fake-rt-${randomBytes(18).toString('base64url')}`;
    this.#refreshTokens = new Set(options.refreshTokens ?? [this.refreshToken]);
    (options.legacyAccessTokens ?? []).forEach((token, index) => {
      this.#tokens.set(token, { label: `legacy#${index}`, expiresAt: null, expiredServerSide: false });
    });
    this.tokenLifetimeSec = options.tokenLifetimeSec ?? 14_400;
    this.tokenDelayMs = options.tokenDelayMs ?? 0;
    this.maxPayloadBytes = options.maxPayloadBytes ?? 150 * MiB;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  static async start(options: FakeDropboxOptions = {}): Promise<FakeDropbox> {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-dropbox-root-'));
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-dropbox-work-'));
    let fake: FakeDropbox | undefined;
    const server = http.createServer((req, res) => void fake?.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    fake = new FakeDropbox(server, root, work, options);
    return fake;
  }

  async close(): Promise<void> {
    const closed = new Promise((resolve) => this.#server.close(resolve));
    this.#server.closeAllConnections();
    await closed;
    fs.rmSync(this.root, { recursive: true, force: true });
    fs.rmSync(this.#work, { recursive: true, force: true });
  }

  // ---- test controls --------------------------------------------------------------------------

  /** The next `count` requests to matching routes fail (429 with Retry-After unless told otherwise). */
  failNext(count: number, fault: FaultOptions = {}): void {
    for (let i = 0; i < count; i += 1) {
      this.#faults.push({
        status: fault.status ?? 429,
        retryAfterSec: fault.retryAfterSec ?? 1,
        retryAfterHeader: fault.retryAfterHeader ?? true,
        ...(fault.routes ? { routes: fault.routes } : {}),
      });
    }
  }

  /** Every access token issued so far is refused with 401 `expired_access_token`, whatever its advertised expiry. */
  expireAccessTokens(): void {
    for (const token of this.#tokens.values()) token.expiredServerSide = true;
  }

  /** Pretends the app lacks `scope`: `route` answers 401 `missing_scope`. */
  denyScope(route: string, scope: string): void {
    this.#deniedScopes.set(route, scope);
  }

  revokeRefreshToken(token: string): void {
    this.#refreshTokens.delete(token);
  }

  /** Requests to `route`, in arrival order. */
  requestsTo(route: string): RecordedRequest[] {
    return this.requests.filter((request) => request.route === route);
  }

  /** Successful `refresh_token` grants. */
  get refreshCount(): number {
    return this.requestsTo('/oauth2/token').filter((request) => request.form?.grant_type === 'refresh_token' && request.status === 200).length;
  }

  /** The backing file of a Dropbox path. */
  localPath(dropboxPath: string): string {
    return path.join(this.root, ...dropboxPath.split('/').filter(Boolean));
  }

  /** The metadata Dropbox would report for a committed file. */
  metadata(dropboxPath: string): StoredFile | undefined {
    return this.#files.get(dropboxPath.toLowerCase());
  }

  // ---- dispatch -------------------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake.invalid');
    const record: RecordedRequest = {
      method: req.method ?? '',
      route: url.pathname,
      url: req.url ?? '',
      headers: redactHeaders(req.headers),
      auth: authLabel(req.headers.authorization),
      bodyBytes: 0,
      receivedAt: Date.now(),
      status: 0,
    };
    this.requests.push(record);
    let answer: HttpAnswer;
    try {
      const body = await readBody(req);
      record.bodyBytes = body.length;
      answer = await this.#route(req, url, body, record);
    } catch (error) {
      answer = new HttpAnswer(500, `Internal fake error: ${error instanceof Error ? error.message : String(error)}`);
    }
    record.status = answer.status;
    if (answer.status >= 400) record.error = describeFailure(answer.body);
    const isText = typeof answer.body === 'string';
    const isBinary = Buffer.isBuffer(answer.body);
    res.writeHead(answer.status, {
      'Content-Type': isBinary ? 'application/octet-stream' : isText ? 'text/plain; charset=utf-8' : 'application/json',
      ...answer.headers,
    });
    res.end(isText || isBinary ? answer.body : JSON.stringify(answer.body ?? null));
  }

  async #route(req: http.IncomingMessage, url: URL, body: Buffer, record: RecordedRequest): Promise<HttpAnswer> {
    const route = url.pathname;
    if (route === '/oauth2/authorize' && req.method === 'GET') return this.#authorize(url);
    if (route === '/oauth2/token') {
      const fault = this.#takeFault(route);
      if (fault) return fault;
      return req.method === 'POST' ? this.#token(req, url, body, record) : new HttpAnswer(405, 'Method not allowed');
    }
    if (!route.startsWith('/2/')) return new HttpAnswer(404, 'Not found');
    if (req.method !== 'POST') return new HttpAnswer(405, 'Method not allowed');
    const fn = route.slice(3);

    const fault = this.#takeFault(route);
    if (fault) return fault;
    const authError = this.#checkBearer(req, fn, record);
    if (authError) return authError;
    const missingScope = this.#deniedScopes.get(route);
    if (missingScope) {
      return new HttpAnswer(401, { error_summary: `missing_scope/${missingScope}/..`, error: { '.tag': 'missing_scope', required_scope: missingScope } });
    }

    switch (route) {
      case '/2/check/user':
      case '/2/files/list_folder':
      case '/2/files/list_folder/continue':
      case '/2/files/get_metadata': {
        if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) {
          return badRequest(fn, `Bad HTTP "Content-Type" header: "${req.headers['content-type'] ?? ''}". Expecting one of "application/json".`);
        }
        let arg: unknown;
        try {
          arg = body.length ? JSON.parse(body.toString('utf8')) : null;
        } catch {
          return badRequest(fn, 'request body: could not decode input as JSON');
        }
        record.arg = arg;
        if (route === '/2/files/list_folder') return this.#listFolder(fn, arg);
        if (route === '/2/files/list_folder/continue') return this.#listFolderContinue(fn, arg);
        return route === '/2/check/user' ? this.#checkUser(fn, arg) : this.#getMetadata(fn, arg);
      }
      case '/2/files/download': {
        const raw = req.headers['dropbox-api-arg'] ?? url.searchParams.get('arg') ?? undefined;
        if (typeof raw !== 'string') return badRequest(fn, 'Must provide HTTP header "Dropbox-API-Arg" or URL parameter "arg".');
        let arg: unknown;
        try {
          arg = JSON.parse(raw);
        } catch {
          return badRequest(fn, 'HTTP header "Dropbox-API-Arg": could not decode input as JSON');
        }
        record.arg = arg;
        return this.#download(fn, arg);
      }
      case '/2/files/upload':
      case '/2/files/upload_session/start':
      case '/2/files/upload_session/append_v2':
      case '/2/files/upload_session/finish': {
        const type = String(req.headers['content-type'] ?? '');
        if (type !== 'application/octet-stream' && type !== 'text/plain; charset=dropbox-cors-hack') {
          return badRequest(fn, `Bad HTTP "Content-Type" header: "${type}". Expecting one of "application/octet-stream", "text/plain; charset=dropbox-cors-hack".`);
        }
        const raw = req.headers['dropbox-api-arg'] ?? url.searchParams.get('arg') ?? undefined;
        if (typeof raw !== 'string') return badRequest(fn, 'Must provide HTTP header "Dropbox-API-Arg" or URL parameter "arg".');
        let arg: Record<string, unknown>;
        try {
          arg = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          return badRequest(fn, 'HTTP header "Dropbox-API-Arg": could not decode input as JSON');
        }
        record.arg = arg;
        if (body.length > this.maxPayloadBytes) return conflict('payload_too_large', { '.tag': 'payload_too_large' });
        if (route === '/2/files/upload') return this.#upload(fn, arg, body);
        if (route === '/2/files/upload_session/start') return this.#sessionStart(fn, arg, body);
        if (route === '/2/files/upload_session/append_v2') return this.#sessionAppend(fn, arg, body);
        return this.#sessionFinish(fn, arg, body);
      }
      default:
        return new HttpAnswer(404, `Unknown API function: "${fn}"`);
    }
  }

  #takeFault(route: string): HttpAnswer | undefined {
    const index = this.#faults.findIndex((fault) => (fault.routes ? fault.routes.includes(route) : route.startsWith('/2/')));
    if (index < 0) return undefined;
    const [fault] = this.#faults.splice(index, 1);
    if (!fault) return undefined;
    const headers: Record<string, string> = fault.retryAfterHeader ? { 'Retry-After': String(fault.retryAfterSec) } : {};
    if (fault.status === 429) {
      return new HttpAnswer(
        429,
        { error_summary: 'too_many_requests/..', error: { reason: { '.tag': 'too_many_requests' }, retry_after: fault.retryAfterSec } },
        headers,
      );
    }
    return new HttpAnswer(fault.status, fault.status === 503 ? 'Service unavailable' : 'Internal server error', headers);
  }

  #checkBearer(req: http.IncomingMessage, fn: string, record: RecordedRequest): HttpAnswer | undefined {
    const header = req.headers.authorization;
    if (!header?.startsWith('Bearer ')) {
      return badRequest(fn, 'Must provide HTTP header "Authorization" or URL parameter "authorization".');
    }
    const token = this.#tokens.get(header.slice('Bearer '.length));
    if (!token) return unauthorized('invalid_access_token');
    record.auth = token.label;
    if (token.expiredServerSide || (token.expiresAt !== null && Date.now() >= token.expiresAt)) return unauthorized('expired_access_token');
    return undefined;
  }

  // ---- OAuth ----------------------------------------------------------------------------------

  /** Stands in for the user clicking "Allow": answers with the code the real page would show. */
  #authorize(url: URL): HttpAnswer {
    const params = url.searchParams;
    if (params.get('client_id') !== this.appKey) return new HttpAnswer(400, 'Invalid client_id');
    if (params.get('response_type') !== 'code') return new HttpAnswer(400, 'response_type must be "code"');
    const challenge = params.get('code_challenge') ?? undefined;
    const method = params.get('code_challenge_method') ?? undefined;
    if (challenge && method !== 'S256' && method !== 'plain') return new HttpAnswer(400, 'code_challenge_method must be S256 or plain');
    const code = randomBytes(24).toString('base64url');
    this.#codes.set(code, {
      clientId: this.appKey,
      ...(challenge ? { challenge } : {}),
      ...(method ? { method } : {}),
      offline: params.get('token_access_type') === 'offline',
    });
    return new HttpAnswer(200, code);
  }

  async #token(req: http.IncomingMessage, url: URL, body: Buffer, record: RecordedRequest): Promise<HttpAnswer> {
    // Like Dropbox, parameters may come in the query string or the form body; the record keeps
    // the URL as sent, so a test can prove no secret travelled in it.
    const params = new URLSearchParams(url.search);
    if (String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
      for (const [key, value] of new URLSearchParams(body.toString('utf8'))) params.set(key, value);
    }
    record.form = Object.fromEntries([...params].map(([key, value]) => [key, SECRET_PARAMS.has(key) ? '[redacted]' : value]));

    let clientId = params.get('client_id') ?? undefined;
    let clientSecret = params.get('client_secret') ?? undefined;
    const basic = req.headers.authorization;
    if (basic?.startsWith('Basic ')) {
      const [id, ...secret] = Buffer.from(basic.slice(6), 'base64').toString('utf8').split(':');
      clientId = id;
      clientSecret = secret.join(':');
    }
    if (this.tokenDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.tokenDelayMs));
    if (clientId !== this.appKey || (clientSecret !== undefined && clientSecret !== this.#appSecret)) {
      return oauthError(400, 'invalid_client', 'Invalid client_id or client_secret');
    }

    const grant = params.get('grant_type');
    if (grant === 'refresh_token') {
      const refreshToken = params.get('refresh_token');
      if (!refreshToken) return oauthError(400, 'invalid_request', 'No refresh_token');
      if (!this.#refreshTokens.has(refreshToken)) return oauthError(400, 'invalid_grant', 'refresh token is invalid or revoked');
      return new HttpAnswer(200, { access_token: this.#issueAccessToken(), token_type: 'bearer', expires_in: this.tokenLifetimeSec });
    }
    if (grant === 'authorization_code') {
      const code = params.get('code') ?? '';
      const issued = this.#codes.get(code);
      if (!issued || issued.clientId !== clientId) return oauthError(400, 'invalid_grant', "code doesn't exist or has expired");
      if (issued.challenge) {
        const verifier = params.get('code_verifier') ?? '';
        const expected = issued.method === 'plain' ? verifier : createHash('sha256').update(verifier, 'ascii').digest('base64url');
        if (expected !== issued.challenge) return oauthError(400, 'invalid_grant', 'invalid code verifier');
      } else if (clientSecret === undefined) {
        return oauthError(400, 'invalid_client', 'No client_secret (and no PKCE code_verifier)');
      }
      this.#codes.delete(code); // single use
      const grantBody: Record<string, unknown> = {
        access_token: this.#issueAccessToken(),
        token_type: 'bearer',
        expires_in: this.tokenLifetimeSec,
        scope: 'account_info.read files.content.write',
        uid: '12345',
        account_id: 'dbid:fake-account',
      };
      if (issued.offline) {
        const refreshToken = `fake-rt-${randomBytes(24).toString('base64url')}`;
        this.#refreshTokens.add(refreshToken);
        grantBody.refresh_token = refreshToken;
      }
      return new HttpAnswer(200, grantBody);
    }
    return oauthError(400, 'unsupported_grant_type', `grant_type "${grant ?? ''}" is not supported`);
  }

  #issueAccessToken(): string {
    const token = `sl.fake-${randomBytes(24).toString('base64url')}`;
    this.#tokens.set(token, { label: `access#${this.#issued}`, expiresAt: Date.now() + this.tokenLifetimeSec * 1000, expiredServerSide: false });
    this.#issued += 1;
    return token;
  }

  // ---- RPC routes -----------------------------------------------------------------------------

  #checkUser(fn: string, arg: unknown): HttpAnswer {
    const query = (arg as { query?: unknown } | null)?.query ?? '';
    if (typeof query !== 'string') return badRequest(fn, 'request body: query: expected string');
    return new HttpAnswer(200, { result: query });
  }

  #getMetadata(fn: string, arg: unknown): HttpAnswer {
    const dropboxPath = (arg as { path?: unknown } | null)?.path;
    if (typeof dropboxPath !== 'string') return badRequest(fn, 'request body: path: expected string');
    const local = this.#resolve(dropboxPath);
    if (!local) return conflict('path/malformed_path', { '.tag': 'path', path: { '.tag': 'malformed_path' } });
    const stat = fs.statSync(local, { throwIfNoEntry: false });
    if (!stat) return conflict('path/not_found', { '.tag': 'path', path: { '.tag': 'not_found' } });
    if (stat.isDirectory()) {
      return new HttpAnswer(200, { '.tag': 'folder', name: path.basename(local), path_lower: dropboxPath.toLowerCase(), path_display: dropboxPath, id: `id:${idOf(dropboxPath)}` });
    }
    return new HttpAnswer(200, { '.tag': 'file', ...this.metadata(dropboxPath) });
  }

  /** Lists a folder; files put into `root` by a test (not uploaded) get metadata from their stat. */
  #listFolder(fn: string, arg: unknown): HttpAnswer {
    const { path: dropboxPath, limit } = (arg ?? {}) as { path?: unknown; limit?: unknown };
    if (typeof dropboxPath !== 'string') return badRequest(fn, 'request body: path: expected string');
    if (dropboxPath !== '' && !this.#resolve(dropboxPath)) {
      // The API spells the root folder '', and refuses '/'.
      return badRequest(fn, `request body: path: '${dropboxPath}' did not match pattern '(/(.|[\\r\\n])*)?|id:.*|(ns:[0-9]+(/.*)?)'`);
    }
    const local = dropboxPath === '' ? this.root : this.#resolve(dropboxPath)!;
    const stat = fs.statSync(local, { throwIfNoEntry: false });
    if (!stat) return conflict('path/not_found', { '.tag': 'path', path: { '.tag': 'not_found' } });
    if (!stat.isDirectory()) return conflict('path/not_folder', { '.tag': 'path', path: { '.tag': 'not_folder' } });
    const entries = fs.readdirSync(local, { withFileTypes: true }).map((entry) => {
      const child = `${dropboxPath}/${entry.name}`;
      if (entry.isDirectory()) {
        return { '.tag': 'folder', name: entry.name, path_lower: child.toLowerCase(), path_display: child, id: `id:${idOf(child)}` };
      }
      return { '.tag': 'file', ...(this.metadata(child) ?? this.#statMetadata(child, path.join(local, entry.name))) };
    });
    const pageSize = typeof limit === 'number' ? limit : this.listPageSize;
    return this.#listPage(entries, 0, pageSize);
  }

  #listFolderContinue(fn: string, arg: unknown): HttpAnswer {
    const cursor = (arg as { cursor?: unknown } | null)?.cursor;
    const listing = typeof cursor === 'string' ? this.#listCursors.get(cursor) : undefined;
    if (!listing) return conflict('reset', { '.tag': 'reset' });
    this.#listCursors.delete(cursor as string);
    return this.#listPage(listing.entries, listing.offset, listing.pageSize);
  }

  #listPage(entries: unknown[], offset: number, pageSize: number): HttpAnswer {
    const page = entries.slice(offset, offset + pageSize);
    const hasMore = offset + pageSize < entries.length;
    const cursor = `cursor-${randomBytes(8).toString('hex')}`;
    if (hasMore) this.#listCursors.set(cursor, { entries, offset: offset + pageSize, pageSize });
    return new HttpAnswer(200, { entries: page, cursor, has_more: hasMore });
  }

  #statMetadata(dropboxPath: string, local: string): StoredFile {
    const stat = fs.statSync(local);
    const data = fs.readFileSync(local);
    return {
      name: path.posix.basename(dropboxPath),
      id: `id:${idOf(dropboxPath)}`,
      client_modified: wholeSeconds(stat.mtime),
      server_modified: wholeSeconds(stat.mtime),
      rev: '000000001deadbeef',
      size: stat.size,
      path_lower: dropboxPath.toLowerCase(),
      path_display: dropboxPath,
      content_hash: contentHash(data),
      is_downloadable: true,
    };
  }

  #download(fn: string, arg: unknown): HttpAnswer {
    const dropboxPath = (arg as { path?: unknown } | null)?.path;
    if (typeof dropboxPath !== 'string') return badRequest(fn, 'HTTP header "Dropbox-API-Arg": path: expected string');
    const local = this.#resolve(dropboxPath);
    if (!local) return conflict('path/malformed_path', { '.tag': 'path', path: { '.tag': 'malformed_path' } });
    const stat = fs.statSync(local, { throwIfNoEntry: false });
    if (!stat) return conflict('path/not_found', { '.tag': 'path', path: { '.tag': 'not_found' } });
    if (!stat.isFile()) return conflict('path/not_file', { '.tag': 'path', path: { '.tag': 'not_file' } });
    const metadata = this.metadata(dropboxPath) ?? this.#statMetadata(dropboxPath, local);
    return new HttpAnswer(200, fs.readFileSync(local), { 'Dropbox-API-Result': JSON.stringify(metadata) });
  }

  // ---- uploads --------------------------------------------------------------------------------

  async #upload(fn: string, arg: Record<string, unknown>, data: Buffer): Promise<HttpAnswer> {
    const invalid = unknownField(arg, [...COMMIT_FIELDS, 'content_hash']) ?? invalidCommit(arg);
    if (invalid) return badRequest(fn, `HTTP header "Dropbox-API-Arg": ${invalid}`);
    if (arg.content_hash !== undefined && arg.content_hash !== contentHash(data)) {
      return conflict('content_hash_mismatch', { '.tag': 'content_hash_mismatch' });
    }
    const temp = path.join(this.#work, `upload-${randomBytes(8).toString('hex')}`);
    fs.writeFileSync(temp, data);
    const result = this.#commit(arg, temp);
    if (result instanceof HttpAnswer) return result;
    if ('writeError' in result) {
      // UploadError.path is an UploadWriteFailed: { reason: WriteError, upload_session_id }.
      return conflict(`path/${result.summary}`, { '.tag': 'path', reason: result.writeError, upload_session_id: '' });
    }
    return new HttpAnswer(200, result.metadata);
  }

  #sessionStart(fn: string, arg: Record<string, unknown>, data: Buffer): HttpAnswer {
    const invalid = unknownField(arg, ['close', 'session_type', 'content_hash']);
    if (invalid) return badRequest(fn, `HTTP header "Dropbox-API-Arg": ${invalid}`);
    const sessionType = (arg.session_type as { '.tag'?: string } | string | undefined) ?? 'sequential';
    if ((typeof sessionType === 'string' ? sessionType : sessionType['.tag']) !== 'sequential') {
      return badRequest(fn, 'the fake supports sequential upload sessions only');
    }
    if (arg.content_hash !== undefined && arg.content_hash !== contentHash(data)) {
      return conflict('content_hash_mismatch', { '.tag': 'content_hash_mismatch' });
    }
    const id = `pid_upload_session:${randomBytes(16).toString('base64url')}`;
    const file = path.join(this.#work, `session-${randomBytes(8).toString('hex')}`);
    fs.writeFileSync(file, data);
    this.#sessions.set(id, { file, offset: data.length, closed: arg.close === true });
    return new HttpAnswer(200, { session_id: id });
  }

  #sessionAppend(fn: string, arg: Record<string, unknown>, data: Buffer): HttpAnswer {
    const invalid = unknownField(arg, ['cursor', 'close', 'content_hash']);
    if (invalid) return badRequest(fn, `HTTP header "Dropbox-API-Arg": ${invalid}`);
    const found = this.#lookupSession(arg.cursor);
    if (found instanceof HttpAnswer) return found;
    if ('lookupError' in found) return conflict(found.summary, found.lookupError);
    if (arg.content_hash !== undefined && arg.content_hash !== contentHash(data)) {
      return conflict('content_hash_mismatch', { '.tag': 'content_hash_mismatch' });
    }
    fs.appendFileSync(found.session.file, data);
    found.session.offset += data.length;
    if (arg.close === true) found.session.closed = true;
    return new HttpAnswer(200, null);
  }

  #sessionFinish(fn: string, arg: Record<string, unknown>, data: Buffer): HttpAnswer {
    const invalid = unknownField(arg, ['cursor', 'commit', 'content_hash']);
    if (invalid) return badRequest(fn, `HTTP header "Dropbox-API-Arg": ${invalid}`);
    const commit = (arg.commit ?? {}) as Record<string, unknown>;
    const invalidCommitInfo = unknownField(commit, COMMIT_FIELDS) ?? invalidCommit(commit);
    if (invalidCommitInfo) return badRequest(fn, `HTTP header "Dropbox-API-Arg": commit: ${invalidCommitInfo}`);
    const found = this.#lookupSession(arg.cursor, { finishing: true });
    if (found instanceof HttpAnswer) return found;
    if ('lookupError' in found) return conflict(`lookup_failed/${found.summary}`, { '.tag': 'lookup_failed', lookup_failed: found.lookupError });
    if (arg.content_hash !== undefined && arg.content_hash !== contentHash(data)) {
      return conflict('content_hash_mismatch', { '.tag': 'content_hash_mismatch' });
    }
    fs.appendFileSync(found.session.file, data);
    const result = this.#commit(commit, found.session.file);
    if (result instanceof HttpAnswer) return result;
    if ('writeError' in result) return conflict(`path/${result.summary}`, { '.tag': 'path', path: result.writeError });
    this.#sessions.delete(found.id);
    return new HttpAnswer(200, result.metadata);
  }

  #lookupSession(
    cursor: unknown,
    { finishing = false } = {},
  ): HttpAnswer | { id: string; session: Session } | { lookupError: Record<string, unknown>; summary: string } {
    const { session_id: id, offset } = (cursor ?? {}) as { session_id?: unknown; offset?: unknown };
    if (typeof id !== 'string' || typeof offset !== 'number') return badRequest('files/upload_session', 'cursor: expected session_id and offset');
    const session = this.#sessions.get(id);
    if (!session) return { lookupError: { '.tag': 'not_found' }, summary: 'not_found' };
    if (session.closed && !finishing) return { lookupError: { '.tag': 'closed' }, summary: 'closed' };
    if (offset !== session.offset) {
      return { lookupError: { '.tag': 'incorrect_offset', correct_offset: session.offset }, summary: 'incorrect_offset' };
    }
    return { id, session };
  }

  /**
   * Moves `dataFile` (in the work folder, on the same file system) onto the target: a rename, so
   * the file appears whole or not at all.
   */
  #commit(
    commit: Record<string, unknown>,
    dataFile: string,
  ): HttpAnswer | { metadata: StoredFile } | { writeError: Record<string, unknown>; summary: string } {
    const dropboxPath = commit.path as string;
    const local = this.#resolve(dropboxPath);
    if (!local) return { writeError: { '.tag': 'malformed_path' }, summary: 'malformed_path' };
    const modeTag = typeof commit.mode === 'string' ? commit.mode : ((commit.mode as { '.tag'?: string } | undefined)?.['.tag'] ?? 'add');
    let target = local;
    let targetPath = dropboxPath;
    const existing = fs.statSync(local, { throwIfNoEntry: false });
    if (existing?.isDirectory()) return { writeError: { '.tag': 'conflict', conflict: { '.tag': 'folder' } }, summary: 'conflict/folder' };
    if (existing) {
      const current = this.metadata(dropboxPath);
      const mayReplace =
        modeTag === 'overwrite' || (modeTag === 'update' && current?.rev === (commit.mode as { update?: string }).update);
      if (!mayReplace) {
        if (commit.autorename !== true) return { writeError: { '.tag': 'conflict', conflict: { '.tag': 'file' } }, summary: 'conflict/file' };
        ({ local: target, dropboxPath: targetPath } = this.#freeName(dropboxPath));
      }
    }

    const now = wholeSeconds(new Date());
    const clientModified = typeof commit.client_modified === 'string' ? commit.client_modified : now;
    const data = fs.readFileSync(dataFile);
    const time = new Date(clientModified);
    fs.utimesSync(dataFile, time, time);
    try {
      fs.mkdirSync(path.dirname(target), { recursive: true });
    } catch {
      return { writeError: { '.tag': 'conflict', conflict: { '.tag': 'file_ancestor' } }, summary: 'conflict/file_ancestor' };
    }
    fs.renameSync(dataFile, target);
    this.#revs += 1;
    const metadata: StoredFile = {
      name: path.posix.basename(targetPath),
      id: `id:${idOf(targetPath)}`,
      client_modified: clientModified,
      server_modified: now,
      rev: `${this.#revs.toString(16).padStart(9, '0')}${randomBytes(4).toString('hex')}`,
      size: data.length,
      path_lower: targetPath.toLowerCase(),
      path_display: targetPath,
      content_hash: contentHash(data),
      is_downloadable: true,
    };
    this.#files.set(metadata.path_lower, metadata);
    return { metadata };
  }

  #freeName(dropboxPath: string): { local: string; dropboxPath: string } {
    const ext = path.posix.extname(dropboxPath);
    const stem = dropboxPath.slice(0, dropboxPath.length - ext.length);
    for (let n = 1; ; n += 1) {
      const candidate = `${stem} (${n})${ext}`;
      const candidateLocal = this.localPath(candidate);
      if (!fs.existsSync(candidateLocal)) return { local: candidateLocal, dropboxPath: candidate };
    }
  }

  /** A Dropbox path inside `root`, or undefined when malformed ('/a//b', '/a/../b', no leading '/'). */
  #resolve(dropboxPath: string): string | undefined {
    if (!dropboxPath.startsWith('/') || dropboxPath === '/') return undefined;
    const parts = dropboxPath.slice(1).split('/');
    if (parts.some((part) => part === '' || part === '.' || part === '..' || part.includes('\\') || part.includes('\0'))) return undefined;
    return path.join(this.root, ...parts);
  }
}

// ---- helpers ----------------------------------------------------------------------------------

/** Dropbox's content hash, computed independently of the transport's: SHA-256 over per-4 MiB-block SHA-256s. */
export function contentHash(data: Buffer): string {
  const blocks: Buffer[] = [];
  for (let offset = 0; offset < data.length; offset += 4 * MiB) {
    blocks.push(createHash('sha256').update(data.subarray(offset, offset + 4 * MiB)).digest());
  }
  return createHash('sha256').update(Buffer.concat(blocks)).digest('hex');
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function badRequest(fn: string, message: string): HttpAnswer {
  return new HttpAnswer(400, `Error in call to API function "${fn}": ${message}`);
}

function unauthorized(tag: string): HttpAnswer {
  return new HttpAnswer(401, { error_summary: `${tag}/..`, error: { '.tag': tag } });
}

function conflict(summary: string, error: unknown): HttpAnswer {
  return new HttpAnswer(409, { error_summary: `${summary}/..`, error });
}

function oauthError(status: number, error: string, description: string): HttpAnswer {
  return new HttpAnswer(status, { error, error_description: description });
}

function unknownField(arg: Record<string, unknown>, allowed: readonly string[]): string | undefined {
  if (!arg || typeof arg !== 'object') return 'expected an object';
  const unknown = Object.keys(arg).find((key) => !allowed.includes(key));
  return unknown === undefined ? undefined : `unknown field '${unknown}'`;
}

/** The checks of CommitInfo the real API makes before doing anything. */
function invalidCommit(commit: Record<string, unknown>): string | undefined {
  if (typeof commit.path !== 'string') return 'path: expected string';
  if (commit.client_modified !== undefined) {
    if (typeof commit.client_modified !== 'string' || !TIMESTAMP.test(commit.client_modified)) {
      return `client_modified: time data '${String(commit.client_modified)}' does not match format '%Y-%m-%dT%H:%M:%SZ'`;
    }
  }
  for (const flag of ['autorename', 'mute', 'strict_conflict']) {
    if (commit[flag] !== undefined && typeof commit[flag] !== 'boolean') return `${flag}: expected boolean`;
  }
  const mode = commit.mode;
  const tag = typeof mode === 'string' ? mode : (mode as { '.tag'?: unknown } | undefined)?.['.tag'];
  if (mode !== undefined && tag !== 'add' && tag !== 'overwrite' && tag !== 'update') return `mode: unknown tag '${String(tag)}'`;
  return undefined;
}

function wholeSeconds(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

function idOf(dropboxPath: string): string {
  return createHash('sha1').update(dropboxPath.toLowerCase()).digest('base64url').slice(0, 16);
}

function redactHeaders(headers: http.IncomingHttpHeaders): Record<string, string | string[] | undefined> {
  const copy: Record<string, string | string[] | undefined> = { ...headers };
  if (typeof copy.authorization === 'string') copy.authorization = `${copy.authorization.split(' ')[0]} [redacted]`;
  return copy;
}

function authLabel(header: string | undefined): string {
  if (!header) return 'none';
  if (header.startsWith('Basic ')) return 'basic';
  return 'unknown';
}

function describeFailure(body: unknown): string {
  if (typeof body === 'string') return body.split('\n')[0] ?? body;
  const object = body as { error_summary?: unknown; error?: unknown } | null;
  if (typeof object?.error_summary === 'string') return object.error_summary;
  if (typeof object?.error === 'string') return object.error;
  return JSON.stringify(body);
}
