import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import SftpClient from 'ssh2-sftp-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, startEmbeddedSftpServer, type EmbeddedSftpServer } from '../../src/embedded/sftpServer.js';

const USER = 'demo';
const PASSWORD = 'correct horse';
const clientKey = generateKeyPair();

let base: string;
let root: string;
let outside: string;
let server: EmbeddedSftpServer;
const clients: SftpClient[] = [];
/** ssh2-sftp-client logs every end/close to the console by default. */
const quiet: SftpClient.Callbacks = { error: () => undefined, end: () => undefined, close: () => undefined };

const OPENSSH_SFTP = '/usr/bin/sftp';
/** Debian package openssh-client; always there in CI (CI=true), where a missing one fails the test. */
const noOpensshClient = !fs.existsSync(OPENSSH_SFTP) && process.env.CI !== 'true';
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const fingerprintOf = (key: Buffer) => `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;

async function connect(options: Partial<SftpClient.ConnectOptions> = {}, target = server): Promise<SftpClient> {
  const client = new SftpClient('test', quiet);
  clients.push(client);
  await client.connect({ host: target.host, port: target.port, username: USER, password: PASSWORD, readyTimeout: 5000, ...options });
  return client;
}

/** The SFTP status code (or ssh2-sftp-client code) a failed call rejected with. */
async function failure(promise: Promise<unknown>): Promise<{ code: unknown; message: string }> {
  const error = await promise.then(() => null, (e: unknown) => e as { code?: unknown; message: string });
  expect(error, 'expected the call to fail').not.toBeNull();
  return { code: error?.code, message: error?.message ?? '' };
}

beforeAll(async () => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-sftpd-'));
  root = path.join(base, 'root');
  outside = path.join(base, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'secret.txt'), 'top secret');
  server = await startEmbeddedSftpServer({ root, username: USER, password: PASSWORD, authorizedKey: clientKey.public });
  fs.symlinkSync(outside, path.join(root, 'escape-dir'));
  fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(root, 'escape-file'));
  fs.symlinkSync(path.join(outside, 'created-through-link.txt'), path.join(root, 'dangling'));
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.end().catch(() => undefined)));
});

afterAll(async () => {
  await server?.close();
  fs.rmSync(base, { recursive: true, force: true });
});

describe('embedded SFTP server', () => {
  it('authenticates by password and by key, and shows the host key it advertises', async () => {
    let seen: Buffer | undefined;
    const byPassword = await connect({ hostVerifier: (key: Buffer) => ((seen = key), true) });
    expect(fingerprintOf(seen!)).toBe(server.hostKeyFingerprint);
    expect(server.hostPublicKey).toBe(`ssh-ed25519 ${seen!.toString('base64')}`);
    expect(await byPassword.cwd()).toBe('/');

    const byKey = await connect({ password: undefined, privateKey: clientKey.private });
    expect(await byKey.realPath('a/./b/../c')).toBe('/a/c');
  });

  it('refuses a wrong password, a wrong user and an unknown key', async () => {
    const otherKey = generateKeyPair();
    for (const wrong of [{ password: 'wrong' }, { username: 'root' }, { password: undefined, privateKey: otherKey.private }]) {
      expect((await failure(connect(wrong))).message).toMatch(/authentication methods failed/i);
    }
  });

  it('takes a 5 MB fastPut (parallel writes at offsets) byte-identical, and reads it back', async () => {
    const client = await connect();
    const data = randomBytes(5 * 1024 * 1024);
    const local = path.join(base, 'big.bin');
    fs.writeFileSync(local, data);
    await client.mkdir('uploads/deep/er', true);
    await client.fastPut(local, 'uploads/deep/er/big.bin', { concurrency: 64, chunkSize: 32 * 1024 });
    expect(sha256(fs.readFileSync(path.join(root, 'uploads/deep/er/big.bin')))).toBe(sha256(data));
    const back = (await client.get('/uploads/deep/er/big.bin')) as Buffer;
    expect(sha256(back)).toBe(sha256(data));
  });

  it('puts, appends, lists, stats and deletes', async () => {
    const client = await connect();
    await client.mkdir('/list/sub', true);
    await client.put(Buffer.from('hello '), '/list/greeting.txt');
    await client.append(Buffer.from('world'), '/list/greeting.txt');
    expect(fs.readFileSync(path.join(root, 'list/greeting.txt'), 'utf8')).toBe('hello world');

    const listing = await client.list('/list');
    expect(listing.map((e) => [e.name, e.type]).sort()).toEqual([['greeting.txt', '-'], ['sub', 'd']]);
    const stats = await client.stat('list/greeting.txt');
    expect(stats.size).toBe(11);
    expect(stats.isFile).toBe(true);

    await client.delete('/list/greeting.txt');
    expect(await client.exists('/list/greeting.txt')).toBe(false);
    await client.rmdir('/list/sub');
    expect(await client.exists('/list/sub')).toBe(false);
    expect((await failure(client.delete('/list/greeting.txt'))).code).toBe(2);
  });

  it('refuses a v3 rename onto an existing file, while posix-rename replaces it', async () => {
    const client = await connect();
    await client.put(Buffer.from('new'), '/r-new.txt');
    await client.put(Buffer.from('old'), '/r-target.txt');
    expect((await failure(client.rename('/r-new.txt', '/r-target.txt'))).code).toBe(4);
    expect(fs.readFileSync(path.join(root, 'r-target.txt'), 'utf8')).toBe('old');

    await client.posixRename('/r-new.txt', '/r-target.txt');
    expect(fs.readFileSync(path.join(root, 'r-target.txt'), 'utf8')).toBe('new');
    expect(fs.existsSync(path.join(root, 'r-new.txt'))).toBe(false);
    await client.rename('/r-target.txt', '/r-moved.txt');
    expect(fs.readFileSync(path.join(root, 'r-moved.txt'), 'utf8')).toBe('new');
  });

  it('does not offer posix-rename when told not to', async () => {
    const plain = await startEmbeddedSftpServer({ root: path.join(base, 'plain'), username: USER, password: PASSWORD, supportPosixRename: false });
    try {
      const client = await connect({}, plain);
      await client.put(Buffer.from('x'), '/a.txt');
      await failure(client.posixRename('/a.txt', '/b.txt'));
      expect(fs.existsSync(path.join(base, 'plain/a.txt'))).toBe(true);
    } finally {
      await plain.close();
    }
  });

  it('sets mtime through setstat (utimes) and keeps it', async () => {
    const client = await connect();
    const { sftp } = client as unknown as { sftp: ssh2.SFTPWrapper };
    await client.put(Buffer.from('t'), '/timed.txt');
    const mtime = 1_600_000_000;
    await new Promise<void>((resolve, reject) => sftp.utimes('/timed.txt', mtime - 60, mtime, (e) => (e ? reject(e) : resolve())));
    expect((await client.stat('/timed.txt')).modifyTime).toBe(mtime * 1000);
    expect(fs.statSync(path.join(root, 'timed.txt')).mtimeMs).toBe(mtime * 1000);
  });

  it('never reads or writes outside its root, whatever the path', async () => {
    const client = await connect();
    expect((await failure(client.get('../../etc/passwd'))).code).toBe(3);
    expect((await failure(client.put(Buffer.from('x'), '/../x'))).code).toBe(3);
    expect(fs.existsSync(path.join(base, 'x'))).toBe(false);
    expect((await failure(client.get('/escape-file'))).code).toBe(3);
    expect((await failure(client.get('/escape-dir/secret.txt'))).code).toBe(3);
    expect((await failure(client.put(Buffer.from('x'), '/escape-dir/new.txt'))).code).toBe(3);
    expect((await failure(client.put(Buffer.from('x'), '/dangling'))).code).toBe(3);
    expect((await failure(client.list('/escape-dir'))).code).toBe(3);
    await client.put(Buffer.from('inside'), '/inside.txt');
    expect((await failure(client.rename('/inside.txt', '/../moved.txt'))).code).toBe(3);
    expect((await failure(client.posixRename('/inside.txt', '/escape-dir/secret.txt'))).code).toBe(3);
    expect(fs.readdirSync(outside)).toEqual(['secret.txt']);
    expect(fs.readFileSync(path.join(outside, 'secret.txt'), 'utf8')).toBe('top secret');
    // The links themselves are inside the root: they can be seen and removed.
    expect((await client.exists('/escape-file'))).toBe('l');
    await client.delete('/escape-file');
    expect(fs.existsSync(path.join(outside, 'secret.txt'))).toBe(true);
  });

  it('survives clients cut mid-transfer; a new connection works', async () => {
    const client = await connect();
    const local = path.join(base, 'cut.bin');
    fs.writeFileSync(local, randomBytes(20 * 1024 * 1024));
    const upload = client.fastPut(local, '/cut.bin');
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if ((fs.statSync(path.join(root, 'cut.bin'), { throwIfNoEntry: false })?.size ?? 0) > 0) {
          clearInterval(poll);
          resolve();
        }
      }, 5);
    });
    server.dropAllConnections();
    await failure(upload);
    await expect.poll(() => server.connections).toBe(0);

    const again = await connect();
    await again.put(Buffer.from('still here'), '/after-cut.txt');
    expect(fs.readFileSync(path.join(root, 'after-cut.txt'), 'utf8')).toBe('still here');
  });

  it.skipIf(noOpensshClient)("serves OpenSSH's sftp client (batch mode), which verifies the host key and exits", async () => {
    const keyPath = path.join(base, 'openssh_client_key');
    fs.writeFileSync(keyPath, clientKey.private, { mode: 0o600 });
    const knownHosts = path.join(base, 'known_hosts');
    fs.writeFileSync(knownHosts, `[${server.host}]:${server.port} ${server.hostPublicKey}\n`);
    const local = path.join(base, 'openssh.bin');
    fs.writeFileSync(local, randomBytes(300_000));
    const batch = path.join(base, 'batch');
    fs.writeFileSync(batch, [`mkdir /ossh`, `put ${local} /ossh/tmp.bin`, `put ${local} /ossh/final.bin`, 'rename /ossh/tmp.bin /ossh/final.bin', 'ls -l /ossh', `get /ossh/final.bin ${local}.back`].join('\n'));
    const { stdout } = await promisify(execFile)(OPENSSH_SFTP, [
      '-b', batch, '-i', keyPath, '-P', String(server.port),
      '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes',
      `${USER}@${server.host}`,
    ], { timeout: 15_000 });
    // `rename` onto an existing file succeeds only through posix-rename@openssh.com.
    expect(stdout).toMatch(/^-rw\S+ .* final\.bin$/m);
    expect(fs.existsSync(path.join(root, 'ossh/tmp.bin'))).toBe(false);
    expect(fs.readFileSync(`${local}.back`).equals(fs.readFileSync(local))).toBe(true);
  });

  it('close() ends every connection and resolves, and returns the same promise', async () => {
    const own = await startEmbeddedSftpServer({ root: path.join(base, 'closing'), username: USER, password: PASSWORD });
    const client = await connect({}, own);
    const ended = new Promise<void>((resolve) => client.on('close', () => resolve()));
    expect(own.connections).toBe(1);
    const closing = own.close();
    expect(own.close()).toBe(closing);
    await closing;
    await ended;
    expect(own.connections).toBe(0);
  });
});
