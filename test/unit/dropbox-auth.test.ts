import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PushtaskError } from '../../src/shared/errors.js';
import {
  AccessTokenKeeper,
  authorizeUrl,
  createPkcePair,
  oauthUrls,
  parseAuthorizationCode,
  parseRetryAfter,
  pkceChallenge,
  untilAborted,
} from '../../src/transports/dropboxAuth.js';

describe('PKCE', () => {
  it('derives the S256 challenge of RFC 7636 appendix B', () => {
    expect(pkceChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
  });

  it('makes fresh verifiers of allowed characters and length, each with its challenge', () => {
    const a = createPkcePair();
    const b = createPkcePair();
    expect(a.verifier).not.toBe(b.verifier);
    for (const { verifier, challenge } of [a, b]) {
      expect(verifier).toMatch(/^[A-Za-z0-9\-._~]{43,128}$/);
      expect(challenge).toBe(createHash('sha256').update(verifier).digest('base64url'));
    }
  });

  it('builds the authorize URL for offline access with an S256 challenge, on Dropbox or a base URL', () => {
    const url = new URL(authorizeUrl({ appKey: 'k ey&', challenge: 'abc' }));
    expect(`${url.origin}${url.pathname}`).toBe('https://www.dropbox.com/oauth2/authorize');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      client_id: 'k ey&',
      response_type: 'code',
      token_access_type: 'offline',
      code_challenge: 'abc',
      code_challenge_method: 'S256',
    });
    expect(authorizeUrl({ appKey: 'k', challenge: 'c', baseUrl: 'http://127.0.0.1:9/' })).toMatch(/^http:\/\/127\.0\.0\.1:9\/oauth2\/authorize\?/);
  });

  it('takes a pasted code as is, trimmed, or out of a pasted redirect URL', () => {
    expect(parseAuthorizationCode('  abc123-XYZ \r')).toBe('abc123-XYZ');
    expect(parseAuthorizationCode('https://localhost/cb?code=the-code&state=x')).toBe('the-code');
  });
});

describe('OAuth endpoints and hints', () => {
  it('sends OAuth to Dropbox, or to <baseUrl>/oauth2/*', () => {
    expect(oauthUrls()).toEqual({ authorize: 'https://www.dropbox.com/oauth2/authorize', token: 'https://api.dropboxapi.com/oauth2/token' });
    expect(oauthUrls('http://127.0.0.1:8080//')).toEqual({ authorize: 'http://127.0.0.1:8080/oauth2/authorize', token: 'http://127.0.0.1:8080/oauth2/token' });
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(parseRetryAfter('7')).toBe(7000);
    expect(parseRetryAfter('1.5')).toBe(1500);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), () => 4000)).toBe(6000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});

/** A token endpoint in a function: counts calls and answers after `delayMs`. */
function tokenEndpoint(delayMs = 20, expiresIn = 14_400) {
  const calls: { url: string; body: string }[] = [];
  const fetch = (async (url: string | URL | Request, init?: RequestInit) => {
    calls.push({ url: String(url), body: String(init?.body) });
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    return new Response(JSON.stringify({ access_token: `token-${calls.length}`, token_type: 'bearer', expires_in: expiresIn }), { status: 200 });
  }) as typeof globalThis.fetch;
  return { calls, fetch };
}

describe('AccessTokenKeeper', () => {
  const base = { appKey: 'key', refreshToken: 'refresh-secret-123', tokenUrl: 'http://127.0.0.1:1/oauth2/token' };

  it('refreshes once for many concurrent callers, with the refresh token in the body only', async () => {
    const endpoint = tokenEndpoint();
    const keeper = new AccessTokenKeeper({ ...base, fetch: endpoint.fetch });
    const signal = new AbortController().signal;
    const tokens = await Promise.all([1, 2, 3, 4].map(() => keeper.get(signal)));
    expect(new Set(tokens)).toEqual(new Set(['token-1']));
    expect(endpoint.calls).toHaveLength(1);
    expect(endpoint.calls[0]?.url).toBe(base.tokenUrl);
    expect(new URLSearchParams(endpoint.calls[0]?.body)).toEqual(new URLSearchParams({ grant_type: 'refresh_token', refresh_token: base.refreshToken, client_id: 'key' }));
  });

  it('refreshes within the margin before the advertised expiry', async () => {
    let now = 0;
    const endpoint = tokenEndpoint(0, 3600);
    const keeper = new AccessTokenKeeper({ ...base, fetch: endpoint.fetch, marginMs: 60_000, now: () => now });
    const signal = new AbortController().signal;
    expect(await keeper.get(signal)).toBe('token-1');
    now = 3_539_000;
    expect(await keeper.get(signal)).toBe('token-1');
    now = 3_541_000;
    expect(await keeper.get(signal)).toBe('token-2');
  });

  it('renews a rejected token once, however many callers saw it rejected', async () => {
    const endpoint = tokenEndpoint();
    const keeper = new AccessTokenKeeper({ ...base, fetch: endpoint.fetch });
    const signal = new AbortController().signal;
    const first = await keeper.get(signal);
    const renewed = await Promise.all([1, 2, 3].map(() => keeper.renew(first, signal)));
    expect(new Set(renewed)).toEqual(new Set(['token-2']));
    // A caller whose rejection arrives after the renewal gets the new token without another refresh.
    expect(await keeper.renew(first, signal)).toBe('token-2');
    expect(endpoint.calls).toHaveLength(2);
  });

  it('lets one caller stop waiting without cancelling the refresh for the others', async () => {
    const endpoint = tokenEndpoint(100);
    const keeper = new AccessTokenKeeper({ ...base, fetch: endpoint.fetch });
    const impatient = new AbortController();
    const gaveUp = keeper.get(impatient.signal);
    const patient = keeper.get(new AbortController().signal);
    impatient.abort(new PushtaskError('TIMEOUT', 'too slow'));
    await expect(gaveUp).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(await patient).toBe('token-1');
    expect(endpoint.calls).toHaveLength(1);
  });

  it('uses a legacy token as is, and says what to do when there is nothing to use', async () => {
    const signal = new AbortController().signal;
    expect(await new AccessTokenKeeper({ accessToken: 'legacy', tokenUrl: base.tokenUrl }).get(signal)).toBe('legacy');
    await expect(new AccessTokenKeeper({ tokenUrl: base.tokenUrl }).get(signal)).rejects.toMatchObject({
      code: 'AUTH_FAILED',
      message: expect.stringMatching(/pushtask dropbox-auth/),
    });
  });

  it('reports an unreachable token endpoint as CONNECT_FAILED, naming the host but no secret', async () => {
    const fetch = (async () => {
      throw new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:1') });
    }) as typeof globalThis.fetch;
    const error = await new AccessTokenKeeper({ ...base, fetch }).get(new AbortController().signal).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'CONNECT_FAILED' });
    expect((error as Error).message).toMatch(/http:\/\/127\.0\.0\.1:1.*ECONNREFUSED/);
    expect((error as Error).message).not.toContain(base.refreshToken);
  });
});

describe('untilAborted', () => {
  it('rejects at once with the reason of an already aborted signal', async () => {
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(untilAborted(new Promise(() => undefined), controller.signal)).rejects.toThrow('stop');
  });
});
