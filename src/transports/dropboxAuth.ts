/**
 * Dropbox OAuth 2: PKCE for `pushtask dropbox-auth`, and the short-lived access tokens the
 * transport lives on.
 *
 * Token requests are made here rather than by the SDK's DropboxAuth because the SDK puts the
 * refresh token (and the app secret) in the URL's query string, where proxies and access logs
 * keep it; its `dataOnBody` option instead posts the JavaScript object itself, which `fetch`
 * sends as the text "[object Object]". It also lets concurrent calls refresh at once and cannot
 * be aborted. Here every token request is a form-encoded POST body, as Dropbox documents it.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from '../shared/logger.js';
import { PushtaskError, errorMessage } from '../shared/errors.js';

export const DROPBOX_AUTHORIZE_URL = 'https://www.dropbox.com/oauth2/authorize';
export const DROPBOX_TOKEN_URL = 'https://api.dropboxapi.com/oauth2/token';

export type FetchFn = typeof globalThis.fetch;

/** The OAuth endpoints, on Dropbox or on a Dropbox-compatible server at `baseUrl` (tests). */
export function oauthUrls(baseUrl?: string): { authorize: string; token: string } {
  if (!baseUrl) return { authorize: DROPBOX_AUTHORIZE_URL, token: DROPBOX_TOKEN_URL };
  const base = baseUrl.replace(/\/+$/, '');
  return { authorize: `${base}/oauth2/authorize`, token: `${base}/oauth2/token` };
}

/** What to tell a user whose credentials stopped working. */
export function reauthHint(appKey: string | undefined): string {
  return `Run \`pushtask dropbox-auth --app-key ${appKey ?? '<your app key>'}\` for a new refresh token and put it in the config.`;
}

// ---------------------------------------------------------------------------------------------
// PKCE (RFC 7636)

export interface PkcePair {
  /** Kept secret on this machine; sent only with the code exchange. */
  verifier: string;
  /** base64url(SHA-256(verifier)); goes into the authorize URL. */
  challenge: string;
}

/** A fresh verifier (86 characters from 64 random bytes; RFC 7636 allows 43–128) and its S256 challenge. */
export function createPkcePair(random: (size: number) => Buffer = randomBytes): PkcePair {
  const verifier = random(64).toString('base64url');
  return { verifier, challenge: pkceChallenge(verifier) };
}

export function pkceChallenge(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/**
 * The page the user opens to allow the app. No redirect URI: Dropbox then shows the code for the
 * user to paste, which suits a command line on a headless logger. `offline` asks for a refresh token.
 */
export function authorizeUrl(options: { appKey: string; challenge: string; baseUrl?: string }): string {
  const url = new URL(oauthUrls(options.baseUrl).authorize);
  url.searchParams.set('client_id', options.appKey);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('token_access_type', 'offline');
  url.searchParams.set('code_challenge', options.challenge);
  url.searchParams.set('code_challenge_method', 'S256');
  return url.toString();
}

/** The code from what a user pasted: the bare code, or a whole redirect URL carrying `code=`. */
export function parseAuthorizationCode(input: string): string {
  const text = input.trim();
  if (/^https?:\/\//i.test(text)) {
    const code = new URL(text).searchParams.get('code');
    if (code) return code;
  }
  return text;
}

// ---------------------------------------------------------------------------------------------
// The token endpoint

export interface TokenGrant {
  accessToken: string;
  /** Seconds the access token lives; absent for legacy long-lived tokens. */
  expiresInSec?: number;
  /** Only from the code exchange. */
  refreshToken?: string;
  scope?: string;
  accountId?: string;
}

interface TokenRequestOptions {
  tokenUrl: string;
  fetch?: FetchFn;
  signal?: AbortSignal;
  /** What failed, for messages: "Refreshing the Dropbox access token". */
  what: string;
  /** What the user should do when Dropbox refuses the grant. */
  hint: string;
}

/** One POST to the token endpoint. Errors name the cause; no credential ever appears in them. */
async function requestToken(form: Record<string, string | undefined>, options: TokenRequestOptions): Promise<TokenGrant> {
  const body = new URLSearchParams();
  for (const [key, value] of Object.entries(form)) if (value !== undefined) body.set(key, value);
  const secrets = Object.values(form).filter((value): value is string => typeof value === 'string' && value.length >= 8);
  const endpoint = new URL(options.tokenUrl).origin;
  const doFetch = options.fetch ?? globalThis.fetch;

  let response: Response;
  try {
    response = await doFetch(options.tokenUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    throw new PushtaskError('CONNECT_FAILED', `${options.what} failed: cannot reach ${endpoint} (${networkCause(error)})`, { cause: error });
  }
  const text = await response.text().catch(() => '');
  if (response.ok) {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      parsed = {};
    }
    if (typeof parsed.access_token !== 'string' || parsed.access_token === '') {
      throw new PushtaskError('CONNECT_FAILED', `${options.what} failed: ${endpoint} answered without an access token`);
    }
    return {
      accessToken: parsed.access_token,
      ...(typeof parsed.expires_in === 'number' ? { expiresInSec: parsed.expires_in } : {}),
      ...(typeof parsed.refresh_token === 'string' ? { refreshToken: parsed.refresh_token } : {}),
      ...(typeof parsed.scope === 'string' ? { scope: parsed.scope } : {}),
      ...(typeof parsed.account_id === 'string' ? { accountId: parsed.account_id } : {}),
    };
  }

  const reason = scrub(oauthErrorText(text), secrets);
  if (response.status === 429) {
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
    throw new PushtaskError('RATE_LIMITED', `${options.what} failed: Dropbox is rate limiting (429 ${reason})`, {
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }
  // 400 invalid_grant / invalid_client, 401: the credentials themselves; no retry soon will help.
  if (response.status === 400 || response.status === 401 || response.status === 403) {
    throw new PushtaskError('AUTH_FAILED', `${options.what} failed: Dropbox refused it (${response.status} ${reason}). ${options.hint}`);
  }
  throw new PushtaskError('CONNECT_FAILED', `${options.what} failed: ${endpoint} answered ${response.status} ${reason}`);
}

export interface AppCredentials {
  appKey: string;
  /** Only for apps that have one and were not authorised with PKCE alone. */
  appSecret?: string | undefined;
  tokenUrl: string;
  fetch?: FetchFn;
  signal?: AbortSignal;
}

/** Exchanges the code the user pasted (PKCE: proven by the verifier) for tokens. */
export function exchangeCode(options: AppCredentials & { code: string; verifier: string }): Promise<TokenGrant> {
  return requestToken(
    {
      grant_type: 'authorization_code',
      code: options.code,
      client_id: options.appKey,
      client_secret: options.appSecret,
      code_verifier: options.verifier,
    },
    {
      ...options,
      what: 'Exchanging the authorization code',
      hint: 'A code works once and only for a few minutes, and only with the app key it was made for: run `pushtask dropbox-auth` again.',
    },
  );
}

/** A new short-lived access token for a refresh token. */
export function refreshAccessToken(options: AppCredentials & { refreshToken: string }): Promise<TokenGrant> {
  return requestToken(
    {
      grant_type: 'refresh_token',
      refresh_token: options.refreshToken,
      client_id: options.appKey,
      client_secret: options.appSecret,
    },
    { ...options, what: 'Refreshing the Dropbox access token', hint: reauthHint(options.appKey) },
  );
}

// ---------------------------------------------------------------------------------------------
// Keeping an access token

export interface TokenKeeperOptions {
  appKey?: string | undefined;
  appSecret?: string | undefined;
  refreshToken?: string | undefined;
  /** A legacy long-lived token, or one to start with. */
  accessToken?: string | undefined;
  tokenUrl: string;
  fetch?: FetchFn;
  /**
   * Refresh this long before the advertised expiry, so a token never dies in the middle of a
   * long upload session.
   * @default 300_000 (five minutes, as the SDK does)
   */
  marginMs?: number;
  /**
   * A refresh that hangs is given up after this long (every upload waiting for it would hang too).
   * @default 30_000
   */
  timeoutMs?: number;
  now?: () => number;
  logger?: Logger;
}

/**
 * Holds the access token shared by every upload (and every upload lane) using one set of
 * credentials. Refreshes are single-flight: however many uploads find the token expired at once,
 * one request goes to Dropbox and all of them wait for its answer.
 */
export class AccessTokenKeeper {
  readonly #o: TokenKeeperOptions;
  readonly #now: () => number;
  #token: string | undefined;
  #expiresAt = Number.POSITIVE_INFINITY;
  #refreshing: Promise<string> | null = null;
  /** Refreshes that reached Dropbox (for logs and tests). */
  refreshes = 0;

  constructor(options: TokenKeeperOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#token = options.accessToken || undefined;
  }

  get canRefresh(): boolean {
    return Boolean(this.#o.refreshToken && this.#o.appKey);
  }

  /** A token believed valid: the current one, or a fresh one when it is missing or about to expire. */
  async get(signal: AbortSignal): Promise<string> {
    const margin = this.#o.marginMs ?? 300_000;
    if (this.#token && this.#now() + margin < this.#expiresAt) return this.#token;
    if (!this.canRefresh) {
      if (this.#token) return this.#token; // a legacy token: Dropbox will say when it is no good
      throw new PushtaskError('AUTH_FAILED', `No Dropbox credentials: need refreshToken + appKey, or accessToken. ${reauthHint(this.#o.appKey)}`);
    }
    return this.#refresh(signal);
  }

  /**
   * Dropbox rejected `rejected` as expired before its advertised time (revoked server-side,
   * clock skew): get another one, unless a concurrent caller already did.
   */
  async renew(rejected: string, signal: AbortSignal): Promise<string> {
    if (this.#token && this.#token !== rejected && !this.#refreshing) return this.#token;
    if (this.#token === rejected) this.#token = undefined;
    return this.#refresh(signal);
  }

  #refresh(signal: AbortSignal): Promise<string> {
    if (!this.#refreshing) {
      this.#refreshing = this.#doRefresh().finally(() => {
        this.#refreshing = null;
      });
      // Every waiter may have been aborted already: the shared refresh's failure is theirs, never unhandled.
      this.#refreshing.catch(() => undefined);
    }
    // The shared refresh goes on when one waiting upload is aborted; only that upload stops waiting.
    return untilAborted(this.#refreshing, signal);
  }

  async #doRefresh(): Promise<string> {
    const { refreshToken, appKey } = this.#o;
    if (!refreshToken || !appKey) throw new PushtaskError('AUTH_FAILED', `Cannot refresh the Dropbox access token without refreshToken + appKey. ${reauthHint(appKey)}`);
    this.refreshes += 1;
    const grant = await refreshAccessToken({
      appKey,
      appSecret: this.#o.appSecret,
      refreshToken,
      tokenUrl: this.#o.tokenUrl,
      signal: AbortSignal.timeout(this.#o.timeoutMs ?? 30_000),
      ...(this.#o.fetch ? { fetch: this.#o.fetch } : {}),
    });
    this.#token = grant.accessToken;
    this.#expiresAt = grant.expiresInSec === undefined ? Number.POSITIVE_INFINITY : this.#now() + grant.expiresInSec * 1000;
    this.#o.logger?.debug(`Refreshed the Dropbox access token${grant.expiresInSec === undefined ? '' : ` (valid ${grant.expiresInSec} s)`}`);
    return grant.accessToken;
  }
}

const keepers = new Map<string, AccessTokenKeeper>();

/**
 * One keeper per set of credentials in this process: each upload lane has its own transport, and
 * they must not each refresh the same token. Keyed by a hash, so no map key holds a secret.
 */
export function sharedTokenKeeper(options: TokenKeeperOptions): AccessTokenKeeper {
  const key = createHash('sha256')
    .update(JSON.stringify([options.tokenUrl, options.appKey, options.appSecret, options.refreshToken, options.accessToken]))
    .digest('hex');
  let keeper = keepers.get(key);
  if (!keeper) {
    keeper = new AccessTokenKeeper(options);
    keepers.set(key, keeper);
  }
  return keeper;
}

// ---------------------------------------------------------------------------------------------
// Small helpers shared with the transport

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null | undefined, now: () => number = Date.now): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now());
}

/** Waits for `promise`, or rejects with the signal's reason as soon as it aborts. */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** undici's "fetch failed" hides the useful part (ECONNREFUSED …) in `cause`. */
export function networkCause(error: unknown): string {
  const cause = (error as { cause?: unknown } | null)?.cause;
  return cause ? errorMessage(cause) : errorMessage(error);
}

function oauthErrorText(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: unknown; error_description?: unknown };
    const code = typeof parsed.error === 'string' ? parsed.error : undefined;
    const description = typeof parsed.error_description === 'string' ? parsed.error_description : undefined;
    if (code || description) return [code, description].filter(Boolean).join(': ');
  } catch {
    // not JSON: fall through to the text itself
  }
  return text.trim().split('\n')[0]?.slice(0, 200) ?? '';
}

function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) out = out.split(secret).join('[redacted]');
  return out;
}
