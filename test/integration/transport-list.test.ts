/**
 * The optional read side of the transports (`list`, `read`: what `pushtask monitor` uses) and the
 * upload's `onProgress`, against the loopback servers: local folder, the embedded SFTP server,
 * ftp-srv and the fake Dropbox.
 */
import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dropboxTransportSchema, ftpTransportSchema, sftpTransportSchema } from '../../src/config/schema.js';
import { startEmbeddedSftpServer, type EmbeddedSftpServer } from '../../src/embedded/sftpServer.js';
import { silentLogger } from '../../src/shared/logger.js';
import { DropboxTransport } from '../../src/transports/dropbox.js';
import { FtpTransport } from '../../src/transports/ftp.js';
import { LocalTransport } from '../../src/transports/local.js';
import { SftpTransport } from '../../src/transports/sftp.js';
import type { Transport } from '../../src/transports/types.js';
import { FAKE_APP_KEY, FakeDropbox } from '../helpers/fakeDropbox.js';
import { startFtpServer, type TestFtpServer } from '../helpers/ftpServer.js';
import { MTIME, checkReadSide, seedRemote } from '../helpers/remoteListing.js';
import { createWorkspace, type Workspace } from '../helpers/workspace.js';

const MiB = 1024 * 1024;
const signal = () => AbortSignal.timeout(10_000);
const context = () => ({ logger: silentLogger(), stateDir: ws.path('state') });

let ws: Workspace;
const cleanups: (() => Promise<void>)[] = [];

beforeEach(() => {
  ws = createWorkspace('pushtask-list-');
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  ws.cleanup();
});

async function connected<T extends Transport>(transport: T): Promise<T> {
  await transport.connect(signal());
  cleanups.push(() => transport.close());
  return transport;
}

/** Uploads a file of `size` bytes and returns the onProgress counts. */
async function progressOf(transport: Transport, size: number): Promise<number[]> {
  const local = ws.write('local/upload.bin', Buffer.alloc(size, 7));
  const seen: number[] = [];
  await transport.upload({ localPath: local, remotePath: 'up/upload.bin', mtime: MTIME, signal: signal(), onProgress: (bytes) => seen.push(bytes) });
  return seen;
}

function expectRisingTo(seen: number[], total: number): void {
  expect(seen.length).toBeGreaterThan(1);
  expect(seen.every((bytes, i) => i === 0 || bytes >= seen[i - 1]!)).toBe(true);
  expect(seen.at(-1)).toBe(total);
}

describe('list and read', () => {
  it('local folder', async () => {
    seedRemote(ws.path('server'));
    const transport = await connected(new LocalTransport({ type: 'local', dir: ws.path('server', 'incoming') }));
    await checkReadSide(transport);
  });

  it('sftp (embedded server), and upload progress from fastPut', async () => {
    seedRemote(ws.path('server'));
    const server: EmbeddedSftpServer = await startEmbeddedSftpServer({ root: ws.path('server'), username: 'u', password: 'pw-secret' });
    cleanups.push(() => server.close());
    const config = sftpTransportSchema.parse({
      type: 'sftp', host: '127.0.0.1', port: server.port, username: 'u', password: 'pw-secret', remoteDir: 'incoming', hostKey: server.hostKeyFingerprint,
    });
    const transport = await connected(new SftpTransport(config, context()));
    await checkReadSide(transport);
    expectRisingTo(await progressOf(transport, 3 * MiB), 3 * MiB);
    await transport.close();
    await expect(transport.list('', signal())).rejects.toMatchObject({ code: 'REMOTE_READ_FAILED', message: expect.stringContaining('not connected') });
  });

  it('ftp (ftp-srv: LIST without times, so MDTM gives them), and upload progress', async () => {
    seedRemote(ws.path('server'));
    const server: TestFtpServer = await startFtpServer({ root: ws.path('server'), tls: false });
    cleanups.push(() => server.close());
    const config = ftpTransportSchema.parse({
      type: 'ftp', host: '127.0.0.1', port: server.port, username: server.user, password: server.password, remoteDir: 'incoming', secure: false,
    });
    const transport = await connected(new FtpTransport(config, context()));
    await checkReadSide(transport);
    expect(server.commands.some((command) => command.startsWith('MDTM '))).toBe(true);
    expectRisingTo(await progressOf(transport, 3 * MiB), 3 * MiB);
  });

  it('dropbox (fake server), paged listings, and progress per upload-session chunk', async () => {
    const fake = await FakeDropbox.start();
    cleanups.push(() => fake.close());
    seedRemote(fake.root);
    fake.listPageSize = 2; // four entries: list_folder + list_folder/continue
    const config = dropboxTransportSchema.parse({ type: 'dropbox', refreshToken: fake.refreshToken, appKey: FAKE_APP_KEY, remoteDir: '/incoming', baseUrl: fake.url });
    const transport = await connected(new DropboxTransport(config, context(), { singleUploadMaxBytes: MiB, chunkBytes: MiB }));
    await checkReadSide(transport);
    expect(fake.requestsTo('/2/files/list_folder/continue').length).toBeGreaterThan(0);
    expectRisingTo(await progressOf(transport, 3 * MiB + 5), 3 * MiB);
  });
});
