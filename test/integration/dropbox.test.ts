/**
 * The dropbox transport, `pushtask dropbox-auth` and the whole agent against the fake Dropbox
 * server (test/helpers/fakeDropbox.ts): real HTTP on loopback, real files, no mocks.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { dropboxAuthCommand } from '../../src/cli/dropboxAuth.js';
import type { CliIO } from '../../src/cli/command.js';
import { dropboxTransportSchema, type DropboxTransportConfig } from '../../src/config/schema.js';
import { TaskMaster } from '../../src/index.js';
import type { UploadFailedEvent } from '../../src/master/events.js';
import { PushtaskError } from '../../src/shared/errors.js';
import { DropboxTransport, type DropboxTransportOptions } from '../../src/transports/dropbox.js';
import { AccessTokenKeeper, oauthUrls, refreshAccessToken } from '../../src/transports/dropboxAuth.js';
import { RateGate } from '../../src/transports/rateGate.js';
import { contentHash, FAKE_APP_KEY, FakeDropbox } from '../helpers/fakeDropbox.js';
import { startTcpProxy } from '../helpers/tcpProxy.js';
import { createWorkspace, nextEvent, sameBytes, testConfig, waitFor, type Workspace } from '../helpers/workspace.js';

const MiB = 1024 * 1024;
const logger = pino({ level: 'silent' });

let fake: FakeDropbox;
let ws: Workspace;
let master: TaskMaster | null = null;

beforeEach(async () => {
  fake = await FakeDropbox.start();
  ws = createWorkspace('pushtask-dropbox-');
});

afterEach(async () => {
  await master?.stop();
  master = null;
  await fake.close();
  ws.cleanup();
});

function configFor(overrides: Partial<DropboxTransportConfig> = {}): DropboxTransportConfig {
  return dropboxTransportSchema.parse({
    type: 'dropbox',
    refreshToken: fake.refreshToken,
    appKey: FAKE_APP_KEY,
    remoteDir: '/pushtask',
    baseUrl: fake.url,
    ...overrides,
  });
}

/** A keeper of its own per transport unless one is given: tests must not share tokens by accident. */
function keeperFor(config: DropboxTransportConfig, extra: Partial<ConstructorParameters<typeof AccessTokenKeeper>[0]> = {}): AccessTokenKeeper {
  return new AccessTokenKeeper({
    appKey: config.appKey,
    refreshToken: config.refreshToken,
    accessToken: config.accessToken,
    tokenUrl: oauthUrls(config.baseUrl).token,
    ...extra,
  });
}

function makeTransport(overrides: Partial<DropboxTransportConfig> = {}, options: DropboxTransportOptions = {}): DropboxTransport {
  const config = configFor(overrides);
  return new DropboxTransport(config, { logger, stateDir: ws.dir }, { tokens: keeperFor(config), ...options });
}

function upload(transport: DropboxTransport, localPath: string, remotePath: string, mtime = new Date(), signal = new AbortController().signal) {
  return transport.upload({ localPath, remotePath, mtime, signal });
}

function randomFile(relative: string, bytes: number): string {
  return ws.write(relative, crypto.randomBytes(bytes));
}

async function rejection(promise: Promise<unknown>): Promise<PushtaskError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(PushtaskError);
  return error as PushtaskError;
}

describe('dropbox transport: uploads', () => {
  it('uploads small and empty files byte-identical, overwriting, with client_modified in whole seconds', async () => {
    const transport = makeTransport();
    await transport.connect(new AbortController().signal);
    const mtime = new Date('2026-11-23T04:05:06.789Z');

    const small = ws.write('a.csv', 'time,value\n1,2\n');
    expect(await upload(transport, small, 'a.csv', mtime)).toEqual({ bytes: 15 });
    expect(sameBytes(small, fake.localPath('/pushtask/a.csv'))).toBe(true);
    expect(fake.metadata('/pushtask/a.csv')?.client_modified).toBe('2026-11-23T04:05:06Z');
    expect(fs.statSync(fake.localPath('/pushtask/a.csv')).mtime.toISOString()).toBe('2026-11-23T04:05:06.000Z');

    const [request] = fake.requestsTo('/2/files/upload');
    expect(request?.arg).toMatchObject({ path: '/pushtask/a.csv', mode: { '.tag': 'overwrite' }, client_modified: '2026-11-23T04:05:06Z', mute: true });
    expect(request?.headers['content-type']).toBe('application/octet-stream');

    const empty = ws.write('sub/empty.log', '');
    expect(await upload(transport, empty, 'sub/empty.log')).toEqual({ bytes: 0 });
    expect(fs.readFileSync(fake.localPath('/pushtask/sub/empty.log'))).toHaveLength(0);

    ws.write('a.csv', 'replaced\n');
    await upload(transport, small, 'a.csv');
    expect(fs.readFileSync(fake.localPath('/pushtask/a.csv'), 'utf8')).toBe('replaced\n');
  });

  it('sends files above the single-call threshold through an upload session, and files at it in one call', async () => {
    fake.maxPayloadBytes = 3 * MiB; // the fake refuses bigger requests, as Dropbox does above 150 MiB
    const transport = makeTransport({}, { singleUploadMaxBytes: 3 * MiB, chunkBytes: MiB });

    const big = randomFile('big.bin', 5 * MiB + 12_345);
    expect(await upload(transport, big, 'deep/er/big.bin')).toEqual({ bytes: 5 * MiB + 12_345 });
    expect(sameBytes(big, fake.localPath('/pushtask/deep/er/big.bin'))).toBe(true);
    expect(fake.requestsTo('/2/files/upload_session/start')).toHaveLength(1);
    expect(fake.requestsTo('/2/files/upload_session/append_v2')).toHaveLength(4);
    const [finish] = fake.requestsTo('/2/files/upload_session/finish');
    expect(finish?.arg).toMatchObject({ cursor: { offset: 5 * MiB }, commit: { path: '/pushtask/deep/er/big.bin', mode: { '.tag': 'overwrite' } } });
    expect(fake.metadata('/pushtask/deep/er/big.bin')?.content_hash).toBe(contentHash(fs.readFileSync(big)));
    expect(fake.requestsTo('/2/files/upload')).toHaveLength(0);

    const atThreshold = randomFile('edge.bin', 3 * MiB);
    await upload(transport, atThreshold, 'edge.bin');
    expect(fake.requestsTo('/2/files/upload')).toHaveLength(1);
    expect(sameBytes(atThreshold, fake.localPath('/pushtask/edge.bin'))).toBe(true);
  });

  it('reports a Dropbox refusal (409) as UPLOAD_FAILED with its error summary', async () => {
    fs.mkdirSync(fake.localPath('/pushtask/taken.csv'), { recursive: true });
    const error = await rejection(upload(makeTransport(), ws.write('taken.csv', 'x'), 'taken.csv'));
    expect(error.code).toBe('UPLOAD_FAILED');
    expect(error.message).toMatch(/path\/conflict\/folder/);
  });

  it('stops an upload session when aborted, leaving nothing under the final name', async () => {
    const controller = new AbortController();
    const reason = new PushtaskError('ABORTED', 'the agent is stopping');
    const fetchThatAborts: typeof fetch = (url, init) => {
      if (String(url).endsWith('/append_v2')) controller.abort(reason);
      return fetch(url, init);
    };
    const transport = makeTransport({}, { singleUploadMaxBytes: MiB, chunkBytes: MiB, fetch: fetchThatAborts });
    const big = randomFile('big.bin', 3 * MiB);
    expect(await rejection(upload(transport, big, 'big.bin', new Date(), controller.signal))).toBe(reason);
    expect(fake.requestsTo('/2/files/upload_session/append_v2')).toHaveLength(0);
    expect(fake.requestsTo('/2/files/upload_session/finish')).toHaveLength(0);
    expect(fs.existsSync(fake.localPath('/pushtask/big.bin'))).toBe(false);
  });

  it('connects without the account_info.read scope, but says which scope an upload lacks', async () => {
    fake.denyScope('/2/check/user', 'account_info.read');
    fake.denyScope('/2/files/upload', 'files.content.write');
    const transport = makeTransport();
    await transport.connect(new AbortController().signal);
    const error = await rejection(upload(transport, ws.write('a.txt', 'a'), 'a.txt'));
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.message).toMatch(/"files\.content\.write".*Permissions tab/);
  });

  it('describes itself without secrets and works with a legacy access token', async () => {
    await fake.close();
    fake = await FakeDropbox.start({ legacyAccessTokens: ['legacy-token-0123456789'] });
    const config = configFor({ refreshToken: undefined, appKey: undefined, accessToken: 'legacy-token-0123456789' });
    const transport = new DropboxTransport(config, { logger, stateDir: ws.dir }, { tokens: keeperFor(config) });
    expect(transport.description).toBe(`dropbox:/pushtask (via ${fake.url})`);
    await transport.connect(new AbortController().signal);
    await upload(transport, ws.write('l.txt', 'legacy'), 'l.txt');
    expect(fs.readFileSync(fake.localPath('/pushtask/l.txt'), 'utf8')).toBe('legacy');
    expect(fake.requestsTo('/oauth2/token')).toHaveLength(0);
    expect(fake.requestsTo('/2/files/upload')[0]?.auth).toBe('legacy#0');
  });
});

describe('dropbox transport: tokens', () => {
  it('refreshes ahead of the advertised expiry, without ever being refused', async () => {
    let clock = Date.now();
    const config = configFor();
    const transport = new DropboxTransport(config, { logger, stateDir: ws.dir }, { tokens: keeperFor(config, { now: () => clock }) });
    const file = ws.write('a.txt', 'a');
    await upload(transport, file, 'a.txt');
    await upload(transport, file, 'a.txt');
    expect(fake.refreshCount).toBe(1);

    clock += (fake.tokenLifetimeSec - 200) * 1000; // inside the five-minute margin before expiry
    await upload(transport, file, 'a.txt');
    expect(fake.refreshCount).toBe(2);
    expect(fake.requestsTo('/2/files/upload').map((r) => [r.auth, r.status])).toEqual([
      ['access#0', 200],
      ['access#0', 200],
      ['access#1', 200],
    ]);
  });

  it('after a server-side 401 expired_access_token refreshes exactly once and retries', async () => {
    const transport = makeTransport();
    const file = ws.write('a.txt', 'a');
    await upload(transport, file, 'a.txt');
    fake.expireAccessTokens();
    await upload(transport, file, 'a.txt');
    expect(fake.refreshCount).toBe(2);
    expect(fake.requestsTo('/2/files/upload').map((r) => [r.status, r.error])).toEqual([
      [200, undefined],
      [401, 'expired_access_token/..'],
      [200, undefined],
    ]);
  });

  it('gives up with AUTH_FAILED when the refreshed token is refused too (one retry, no loop)', async () => {
    fake.tokenLifetimeSec = 0; // every token the fake issues is already expired
    const error = await rejection(upload(makeTransport(), ws.write('a.txt', 'a'), 'a.txt'));
    expect(error.code).toBe('AUTH_FAILED');
    expect(fake.requestsTo('/2/files/upload')).toHaveLength(2);
    expect(fake.refreshCount).toBe(2);
  });

  it('lets concurrent uploads share one refresh, on start and after a server-side expiry', async () => {
    fake.tokenDelayMs = 150;
    const transport = makeTransport();
    const files = [0, 1, 2, 3, 4].map((n) => ws.write(`f${n}.txt`, `file ${n}`));
    await Promise.all(files.map((file, n) => upload(transport, file, `f${n}.txt`)));
    expect(fake.refreshCount).toBe(1);

    fake.expireAccessTokens();
    await Promise.all(files.map((file, n) => upload(transport, file, `f${n}.txt`)));
    expect(fake.refreshCount).toBe(2);
    expect(fake.requestsTo('/2/files/upload').filter((r) => r.status === 200)).toHaveLength(10);
  });

  it('shares one token between transports (upload lanes) with the same credentials', async () => {
    fake.tokenDelayMs = 150;
    const config = configFor();
    const lanes = [1, 2, 3].map(() => new DropboxTransport(config, { logger, stateDir: ws.dir }));
    await Promise.all(lanes.map((lane, n) => upload(lane, ws.write(`l${n}.txt`, `lane ${n}`), `l${n}.txt`)));
    expect(fake.refreshCount).toBe(1);
  });

  it('sends the refresh token only in a form-encoded POST body, never in a URL', async () => {
    const transport = makeTransport();
    await transport.connect(new AbortController().signal);
    await upload(transport, ws.write('a.txt', 'a'), 'a.txt');
    fake.expireAccessTokens();
    await upload(transport, ws.write('a.txt', 'b'), 'a.txt');

    const tokenRequests = fake.requestsTo('/oauth2/token');
    expect(tokenRequests.length).toBeGreaterThanOrEqual(2);
    for (const request of tokenRequests) {
      expect(request.method).toBe('POST');
      expect(request.url).toBe('/oauth2/token');
      expect(request.headers['content-type']).toBe('application/x-www-form-urlencoded');
      expect(request.form).toMatchObject({ grant_type: 'refresh_token', refresh_token: '[redacted]', client_id: FAKE_APP_KEY });
    }
    for (const request of fake.requests) expect(request.url).not.toContain(fake.refreshToken);
  });

  it('reports a wrong refresh token or app key as AUTH_FAILED that says to run dropbox-auth, without the token', async () => {
    const badToken = 'not-a-valid-refresh-token-42';
    const error = await rejection(makeTransport({ refreshToken: badToken }).connect(new AbortController().signal));
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.message).toMatch(/invalid_grant/);
    expect(error.message).toMatch(/pushtask dropbox-auth --app-key fake-app-key/);
    expect(error.message).not.toContain(badToken);

    const wrongApp = await rejection(makeTransport({ appKey: 'someone-elses-app' }).connect(new AbortController().signal));
    expect(wrongApp.code).toBe('AUTH_FAILED');
    expect(wrongApp.message).toMatch(/invalid_client/);
  });

  it('stops waiting for a slow refresh when the upload is aborted', async () => {
    fake.tokenDelayMs = 3000;
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(new PushtaskError('TIMEOUT', 'Upload timed out')), 50);
    const error = await rejection(upload(makeTransport(), ws.write('a.txt', 'a'), 'a.txt', new Date(), controller.signal));
    expect(error.code).toBe('TIMEOUT');
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('dropbox transport: rate limits', () => {
  it('turns a 429 into RATE_LIMITED with retryAfterMs from Retry-After, or from the body', async () => {
    // Each upload with its own gate: the account-wide pause is the next test's subject.
    const file = ws.write('a.txt', 'a');
    fake.failNext(1, { retryAfterSec: 7 });
    const limited = await rejection(upload(makeTransport({}, { gate: new RateGate() }), file, 'a.txt'));
    expect(limited.code).toBe('RATE_LIMITED');
    expect(limited.retryAfterMs).toBe(7000);

    fake.failNext(1, { retryAfterSec: 3, retryAfterHeader: false });
    expect((await rejection(upload(makeTransport({}, { gate: new RateGate() }), file, 'a.txt'))).retryAfterMs).toBe(3000);

    await upload(makeTransport({}, { gate: new RateGate() }), file, 'a.txt');
    expect(fs.readFileSync(fake.localPath('/pushtask/a.txt'), 'utf8')).toBe('a');
  });
});

describe('dropbox transport: a 429 pauses the whole account', () => {
  it('holds back the chunks of an upload session already running until Retry-After has passed, then finishes it', async () => {
    // Two lanes of one account (one gate); lane A sends a 6 MiB file in 1 MiB chunks over a
    // 2 MiB/s link, while lane B's small upload is answered 429 with Retry-After 1 s. Measured on
    // the client side: when the gate learnt of the 429, and when each chunk request was sent.
    const gate = new RateGate();
    let pausedAt = 0;
    const pause = gate.pause.bind(gate);
    gate.pause = (ms: number) => {
      pausedAt ||= Date.now();
      pause(ms);
    };
    const sent: Array<{ route: string; at: number }> = [];
    const fetchSpy = async (url: string | URL | Request, init?: RequestInit) => {
      sent.push({ route: new URL(String(url)).pathname, at: Date.now() });
      return globalThis.fetch(url, init);
    };
    const options = { singleUploadMaxBytes: 1024 * 1024, chunkBytes: 1024 * 1024, gate, fetch: fetchSpy as typeof globalThis.fetch };
    const proxy = await startTcpProxy(Number(new URL(fake.url).port), '127.0.0.1', { upBytesPerSecond: 2 * 1024 * 1024 });
    onTestFinished(() => proxy.close());
    const laneA = makeTransport({ baseUrl: `http://127.0.0.1:${proxy.port}` }, options);
    const laneB = makeTransport({ baseUrl: `http://127.0.0.1:${proxy.port}` }, options);
    const big = randomFile('big.bin', 6 * 1024 * 1024);
    fake.failNext(1, { retryAfterSec: 1, routes: ['/2/files/upload'] });
    const session = upload(laneA, big, 'big.bin');
    await waitFor(() => sent.some((request) => request.route.endsWith('/append_v2')), 'the session under way');
    const limited = await rejection(upload(laneB, ws.write('small.txt', 'x'), 'small.txt'));
    expect(limited.code).toBe('RATE_LIMITED');
    await session;
    expect(fs.readFileSync(fake.localPath('/pushtask/big.bin')).equals(fs.readFileSync(big))).toBe(true);
    expect(pausedAt).toBeGreaterThan(0);
    const chunks = sent.filter((request) => /upload_session\/(append_v2|finish)$/.test(request.route));
    // Chunks went on after the pause, and none was sent during it.
    expect(chunks.some((request) => request.at >= pausedAt + 990)).toBe(true);
    expect(chunks.filter((request) => request.at > pausedAt && request.at < pausedAt + 990)).toEqual([]);
  });
});

describe('fake Dropbox server', () => {
  async function call(route: string, arg: unknown, body: Buffer = Buffer.alloc(0), token?: string) {
    const accessToken = token ?? (await refreshAccessToken({ appKey: FAKE_APP_KEY, refreshToken: fake.refreshToken, tokenUrl: `${fake.url}/oauth2/token` })).accessToken;
    const response = await fetch(`${fake.url}${route}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${accessToken}`, 'Content-Type': 'application/octet-stream', 'Dropbox-API-Arg': JSON.stringify(arg) },
      body: new Uint8Array(body),
    });
    return { status: response.status, text: await response.text() };
  }

  it('refuses client_modified with milliseconds (400), like Dropbox', async () => {
    const answer = await call('/2/files/upload', { path: '/x.txt', client_modified: '2026-11-23T04:05:06.789Z' }, Buffer.from('x'));
    expect(answer.status).toBe(400);
    expect(answer.text).toMatch(/client_modified.*does not match format/);
  });

  it('checks upload session offsets (incorrect_offset with the correct one)', async () => {
    const start = await call('/2/files/upload_session/start', {}, Buffer.from('12345'));
    const { session_id } = JSON.parse(start.text) as { session_id: string };
    const wrong = await call('/2/files/upload_session/append_v2', { cursor: { session_id, offset: 3 } }, Buffer.from('678'));
    expect(wrong.status).toBe(409);
    expect(JSON.parse(wrong.text)).toEqual({ error_summary: 'incorrect_offset/..', error: { '.tag': 'incorrect_offset', correct_offset: 5 } });
    expect((await call('/2/files/upload_session/append_v2', { cursor: { session_id, offset: 5 } }, Buffer.from('678'))).status).toBe(200);
    const finished = await call('/2/files/upload_session/finish', { cursor: { session_id, offset: 8 }, commit: { path: '/s.txt' } }, Buffer.from('9'));
    expect(finished.status).toBe(200);
    expect(fs.readFileSync(fake.localPath('/s.txt'), 'utf8')).toBe('123456789');
  });

  it('answers an unknown token with 401 invalid_access_token', async () => {
    const answer = await call('/2/files/upload', { path: '/x.txt' }, Buffer.from('x'), 'sl.made-up');
    expect(answer.status).toBe(401);
    expect(JSON.parse(answer.text).error['.tag']).toBe('invalid_access_token');
  });
});

describe('pushtask dropbox-auth', () => {
  function cliIO(): { io: CliIO; stdin: PassThrough; output: () => string; errors: () => string } {
    const stdin = new PassThrough();
    let out = '';
    let err = '';
    const io: CliIO = { stdin, stdout: new PassThrough(), out: (text) => void (out += text), err: (text) => void (err += text), cwd: ws.dir };
    return { io, stdin, output: () => out, errors: () => err };
  }

  /** Plays the user: opens the printed URL (the fake approves at once) and pastes the code. */
  async function approve(cli: ReturnType<typeof cliIO>, mangle: (code: string) => string = (code) => code): Promise<void> {
    await waitFor(() => /Paste the code/.test(cli.output()), 'the authorize URL');
    const url = /(http:\/\/\S+\/oauth2\/authorize\?\S+)/.exec(cli.output())?.[1];
    expect(url).toBeDefined();
    const params = new URL(url!).searchParams;
    expect(Object.fromEntries(params)).toMatchObject({ client_id: FAKE_APP_KEY, response_type: 'code', token_access_type: 'offline', code_challenge_method: 'S256' });
    const code = await (await fetch(url!)).text();
    cli.stdin.write(`\n${mangle(code)}\n`);
  }

  it('walks through PKCE and prints a refresh token that works, with a config snippet', async () => {
    const cli = cliIO();
    const exit = dropboxAuthCommand(['--app-key', FAKE_APP_KEY, '--base-url', fake.url], cli.io);
    await approve(cli);
    expect(await exit).toBe(0);

    const refreshToken = /export PUSHTASK_DROPBOX_REFRESH_TOKEN='([^']+)'/.exec(cli.output())?.[1];
    expect(refreshToken).toMatch(/^fake-rt-/);
    expect(cli.output()).toContain(`appKey: "${FAKE_APP_KEY}"`);
    const [exchange] = fake.requestsTo('/oauth2/token');
    expect(exchange?.url).toBe('/oauth2/token');
    expect(exchange?.form).toMatchObject({ grant_type: 'authorization_code', code: '[redacted]', code_verifier: '[redacted]', client_id: FAKE_APP_KEY });
    expect(exchange?.form).not.toHaveProperty('client_secret');

    const transport = makeTransport({ refreshToken: refreshToken! });
    await upload(transport, ws.write('a.txt', 'via dropbox-auth'), 'a.txt');
    expect(fs.readFileSync(fake.localPath('/pushtask/a.txt'), 'utf8')).toBe('via dropbox-auth');
  });

  it('fails clearly on a wrong code, on no code, and without --app-key', async () => {
    const wrong = cliIO();
    const wrongExit = dropboxAuthCommand(['--app-key', FAKE_APP_KEY, '--base-url', fake.url], wrong.io);
    await approve(wrong, (code) => `${code}x`);
    expect(await wrongExit).toBe(1);
    expect(wrong.errors()).toMatch(/invalid_grant.*run `pushtask dropbox-auth` again/);

    const none = cliIO();
    const noneExit = dropboxAuthCommand(['--app-key', FAKE_APP_KEY, '--base-url', fake.url], none.io);
    none.stdin.end();
    expect(await noneExit).toBe(1);
    expect(none.errors()).toMatch(/No code was entered/);

    const usage = cliIO();
    expect(await dropboxAuthCommand([], usage.io)).toBe(2);
    expect(usage.errors()).toMatch(/--app-key KEY is required/);
  });
});

describe('the agent delivering to Dropbox', () => {
  it('delivers a watched file and a drop-folder file in a sub-folder, and rides out a 429', async () => {
    ws.write('data/a.csv', 'time,value\n');
    fs.mkdirSync(ws.path('drop'), { recursive: true });
    master = new TaskMaster(
      testConfig({
        watch: [{ file: 'data/a.csv' }, { dir: 'drop', stableMs: 100 }],
        transport: { type: 'dropbox', refreshToken: fake.refreshToken, appKey: FAKE_APP_KEY, remoteDir: '/pushtask', baseUrl: fake.url },
      }),
      { cwd: ws.dir },
    );
    const failures: UploadFailedEvent[] = [];
    master.on('upload-failed', (event) => failures.push(event));
    await master.start();

    const remoteCsv = fake.localPath('/pushtask/a.csv');
    await waitFor(() => sameBytes(ws.path('data/a.csv'), remoteCsv), 'the watched file');
    ws.write('drop/sub/report.txt', 'dropped\n');
    await waitFor(() => sameBytes(ws.path('drop/sub/report.txt'), fake.localPath('/pushtask/sub/report.txt')), 'the drop-folder file');

    fake.failNext(1, { retryAfterSec: 1, routes: ['/2/files/upload'] });
    const failed = nextEvent<UploadFailedEvent>(master, 'upload-failed');
    ws.append('data/a.csv', '1,2\n');
    master.notify('data/a.csv');
    expect((await failed).error.code).toBe('RATE_LIMITED');
    await waitFor(() => sameBytes(ws.path('data/a.csv'), remoteCsv), 'the watched file after the 429', 10_000);
    expect(fake.requestsTo('/2/files/upload').some((r) => r.status === 429)).toBe(true);
    expect(failures).toHaveLength(1);

    await master.stop({ forceKill: false });
    master = null;
    for (const file of [ws.path('logs/pushtask-subtask.log'), ws.path('logs/pushtask-master.log')]) {
      if (fs.existsSync(file)) expect(fs.readFileSync(file, 'utf8')).not.toContain(fake.refreshToken);
    }
    for (const request of fake.requests) expect(request.url).not.toContain(fake.refreshToken);
  });

  it("uploads append-mode files whole (Dropbox's API has no append), byte-identical each time", async () => {
    ws.write('data/big.csv', 'x'.repeat(5000));
    master = new TaskMaster(
      testConfig({
        watch: [{ file: 'data/big.csv', mode: 'append' }],
        transport: { type: 'dropbox', refreshToken: fake.refreshToken, appKey: FAKE_APP_KEY, remoteDir: '/pushtask', baseUrl: fake.url },
      }),
      { cwd: ws.dir },
    );
    const sizes: number[] = [];
    master.on('uploaded', (event) => sizes.push(event.bytes));
    await master.start();
    const remote = fake.localPath('/pushtask/big.csv');
    await waitFor(() => sameBytes(ws.path('data/big.csv'), remote), 'the first upload');
    ws.append('data/big.csv', 'y'.repeat(10));
    master.notify('data/big.csv');
    await waitFor(() => sameBytes(ws.path('data/big.csv'), remote), 'the second upload');
    await waitFor(() => sizes.length >= 2, 'the upload events');
    expect(sizes).toEqual([5000, 5010]);
  });
});
