import { createHash, randomBytes } from 'node:crypto';
import { DropboxResponseError } from 'dropbox';
import { describe, expect, it } from 'vitest';
import {
  DropboxContentHasher,
  describeResponseError,
  dropboxContentHash,
  dropboxTag,
  dropboxTimestamp,
  rerouteUrl,
} from '../../src/transports/dropbox.js';
import { contentHash } from '../helpers/fakeDropbox.js';

describe('dropboxTimestamp', () => {
  it('truncates to whole seconds in %Y-%m-%dT%H:%M:%SZ', () => {
    expect(dropboxTimestamp(new Date('2026-11-23T04:05:06.999Z'))).toBe('2026-11-23T04:05:06Z');
    expect(dropboxTimestamp(new Date('2026-11-23T04:05:06Z'))).toBe('2026-11-23T04:05:06Z');
    expect(dropboxTimestamp(new Date(-1))).toBe('1969-12-31T23:59:59Z');
  });

  it('leaves out what Dropbox cannot take', () => {
    expect(dropboxTimestamp(new Date(Number.NaN))).toBeUndefined();
    expect(dropboxTimestamp(new Date('+010000-01-01T00:00:00Z'))).toBeUndefined();
  });
});

describe('rerouteUrl', () => {
  it('sends the api, content and oauth hosts to <baseUrl>/2/<route> and <baseUrl>/oauth2/token', () => {
    const base = 'http://127.0.0.1:8080';
    expect(rerouteUrl('https://api.dropboxapi.com/2/check/user', base)).toBe(`${base}/2/check/user`);
    expect(rerouteUrl('https://content.dropboxapi.com/2/files/upload_session/append_v2', `${base}/`)).toBe(`${base}/2/files/upload_session/append_v2`);
    expect(rerouteUrl('https://api.dropboxapi.com/oauth2/token', base)).toBe(`${base}/oauth2/token`);
    expect(rerouteUrl('https://content.dropboxapi.com/2/files/upload', 'http://proxy/dropbox')).toBe('http://proxy/dropbox/2/files/upload');
  });

  it('leaves URLs alone without a base URL', () => {
    expect(rerouteUrl('https://content.dropboxapi.com/2/files/upload', undefined)).toBe('https://content.dropboxapi.com/2/files/upload');
  });
});

describe('Dropbox content hash', () => {
  it('is SHA-256 over the SHA-256 of each 4 MiB block, also fed in odd pieces', () => {
    const data = randomBytes(9 * 1024 * 1024 + 17);
    const expected = contentHash(data);
    expect(dropboxContentHash(data)).toBe(expected);
    const hasher = new DropboxContentHasher();
    for (let offset = 0; offset < data.length; offset += 1_234_567) hasher.update(data.subarray(offset, offset + 1_234_567));
    expect(hasher.digest()).toBe(expected);
    expect(hasher.digest()).toBe(expected);
  });

  it('of an empty file is the SHA-256 of nothing', () => {
    expect(dropboxContentHash(Buffer.alloc(0))).toBe(createHash('sha256').digest('hex'));
  });
});

function responseError(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new DropboxResponseError(status, new Headers(headers), body);
}

describe('describeResponseError', () => {
  const describe401 = (tag: string, canRefresh = true) =>
    describeResponseError(responseError(401, { error_summary: `${tag}/..`, error: { '.tag': tag } }), 'UPLOAD_FAILED', 'Upload of /a', 'KEY', canRefresh);

  it('maps 401s to AUTH_FAILED with what to do', () => {
    expect(describe401('invalid_access_token')).toMatchObject({ code: 'AUTH_FAILED', message: expect.stringMatching(/pushtask dropbox-auth --app-key KEY/) });
    expect(describe401('expired_access_token', false).message).toMatch(/cannot be renewed without refreshToken \+ appKey/);
    const scope = describeResponseError(
      responseError(401, { error_summary: 'missing_scope/..', error: { '.tag': 'missing_scope', required_scope: 'files.content.write' } }),
      'UPLOAD_FAILED',
      'Upload of /a',
      'KEY',
      true,
    );
    expect(scope.message).toMatch(/lacks the permission "files.content.write".*Permissions tab/);
    expect(dropboxTag(scope)).toBe('missing_scope');
  });

  it('maps 429 to RATE_LIMITED with Retry-After, or the body retry_after', () => {
    const body = { error_summary: 'too_many_requests/..', error: { reason: { '.tag': 'too_many_requests' }, retry_after: 4 } };
    expect(describeResponseError(responseError(429, body, { 'Retry-After': '9' }), 'UPLOAD_FAILED', 'x', 'K', true)).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 9000 });
    expect(describeResponseError(responseError(429, body), 'UPLOAD_FAILED', 'x', 'K', true)).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 4000 });
    const writes = describeResponseError(responseError(409, { error_summary: 'too_many_write_operations/..', error: { '.tag': 'too_many_write_operations' } }), 'UPLOAD_FAILED', 'x', 'K', true);
    expect(writes.code).toBe('RATE_LIMITED');
  });

  it('maps 409 and 400 to UPLOAD_FAILED with Dropbox\'s own words, and 5xx to the caller\'s code with any Retry-After', () => {
    const full = describeResponseError(responseError(409, { error_summary: 'path/insufficient_space/..', error: {} }), 'UPLOAD_FAILED', 'Upload of /a', 'K', true);
    expect(full).toMatchObject({ code: 'UPLOAD_FAILED', message: 'Upload of /a failed: Dropbox refused it (path/insufficient_space/..)' });
    const bad = describeResponseError(responseError(400, 'Error in call to API function "files/upload": bad\nmore'), 'UPLOAD_FAILED', 'x', 'K', true);
    expect(bad.message).toMatch(/\(400: Error in call to API function "files\/upload": bad\)$/);
    const busy = describeResponseError(responseError(503, 'Service unavailable', { 'Retry-After': '2' }), 'CONNECT_FAILED', 'x', 'K', true);
    expect(busy).toMatchObject({ code: 'CONNECT_FAILED', retryAfterMs: 2000 });
  });
});
