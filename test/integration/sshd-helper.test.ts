import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import SftpClient from 'ssh2-sftp-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../src/embedded/sftpServer.js';
import { sshdSkipReason, startSshd, type SshdServer } from '../helpers/sshd.js';

const skipReason = sshdSkipReason();
if (skipReason) console.warn(`Skipping the OpenSSH sshd tests: ${skipReason}`);

const quiet: SftpClient.Callbacks = { error: () => undefined, end: () => undefined, close: () => undefined };
const fingerprintOf = (key: Buffer) => `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;

describe.skipIf(skipReason !== null)('OpenSSH sshd test helper', () => {
  let sshd: SshdServer;

  beforeAll(async () => {
    const started = await startSshd();
    if (!started) throw new Error('sshd unavailable although sshdSkipReason() said it could run');
    sshd = started;
  });

  afterAll(async () => {
    await sshd?.stop();
  });

  it('logs in with the generated key, shows the ssh-keygen fingerprint, and takes uploads with posix-rename', async () => {
    const client = new SftpClient('sshd-test', quiet);
    let seen: Buffer | undefined;
    await client.connect({
      host: sshd.host,
      port: sshd.port,
      username: sshd.username,
      privateKey: fs.readFileSync(sshd.privateKeyPath),
      readyTimeout: 5000,
      hostVerifier: (key: Buffer) => ((seen = key), true),
    });
    try {
      expect(fingerprintOf(seen!)).toBe(sshd.hostKeyFingerprint);
      expect(fs.readFileSync(sshd.knownHostsPath, 'utf8')).toBe(`[127.0.0.1]:${sshd.port} ssh-ed25519 ${seen!.toString('base64')}\n`);

      const remote = path.join(sshd.dir, 'remote');
      await client.mkdir(remote, true);
      const data = randomBytes(2 * 1024 * 1024);
      const local = path.join(sshd.dir, 'local.bin');
      fs.writeFileSync(local, data);
      await client.fastPut(local, `${remote}/tmp.bin`);
      await client.put(Buffer.from('old'), `${remote}/data.bin`);
      await expect(client.rename(`${remote}/tmp.bin`, `${remote}/data.bin`)).rejects.toThrow();
      await client.posixRename(`${remote}/tmp.bin`, `${remote}/data.bin`);
      expect(fs.readFileSync(path.join(remote, 'data.bin')).equals(data)).toBe(true);
      expect(fs.existsSync(path.join(remote, 'tmp.bin'))).toBe(false);
    } finally {
      await client.end();
    }
  });

  it('refuses an unknown key', async () => {
    const client = new SftpClient('sshd-test', quiet);
    const stranger = generateKeyPair();
    await expect(
      client.connect({ host: sshd.host, port: sshd.port, username: sshd.username, privateKey: stranger.private, readyTimeout: 5000 }),
    ).rejects.toThrow(/authentication/i);
    await client.end().catch(() => undefined);
  });

  it('stop() ends sshd and removes its folder', async () => {
    const own = await startSshd();
    if (!own) throw new Error('sshd unavailable');
    const pid = Number(fs.readFileSync(path.join(own.dir, 'sshd.pid'), 'utf8'));
    await own.stop();
    await own.stop();
    expect(fs.existsSync(own.dir)).toBe(false);
    expect(() => process.kill(pid, 0)).toThrow();
    const refused = await new Promise<boolean>((resolve) => {
      const socket = net.connect(own.port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(false)));
      socket.once('error', () => resolve(true));
    });
    expect(refused).toBe(true);
  });
});
