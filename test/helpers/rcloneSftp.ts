/**
 * `rclone serve sftp` (Debian package rclone) as a child process: an SFTP server that, with its
 * default `--vfs-cache-mode off`, accepts writes only in order (anything else: "can't seek in
 * file", "Illegal seek" to the client) and cannot append — as servers that stream into object
 * storage. One user with a password, a fresh host key, a temp folder as the root.
 */
import fs from 'node:fs';
import path from 'node:path';
import { freePort } from './daemon.js';
import { commandExists, daemonFolder, launchSftpDaemon, type SftpDaemon } from './sftpDaemon.js';

/** Why rclone's SFTP server cannot run here, or null. */
export function rcloneSftpUnavailable(): string | null {
  if (process.platform !== 'linux') return 'the rclone interoperability tests run on Linux only';
  if (!commandExists('rclone')) return 'rclone is missing (Debian package rclone: apt-get install -y rclone)';
  if (!commandExists('ssh-keygen')) return 'ssh-keygen is missing (Debian package openssh-client)';
  return null;
}

/** Null (skip) when it cannot run here, except in CI (CI=true), where that is an error. */
export async function startRcloneSftp(): Promise<SftpDaemon | null> {
  const unavailable = rcloneSftpUnavailable();
  if (unavailable) {
    if (process.env.CI === 'true') throw new Error(`rclone interoperability tests cannot run: ${unavailable}`);
    return null;
  }
  const folder = daemonFolder('pushtask-rclone-');
  const root = path.join(folder.dir, 'root');
  fs.mkdirSync(root);
  const port = await freePort();
  const password = 'rclone-test-pw';
  const noKeys = path.join(folder.dir, 'authorized_keys');
  fs.writeFileSync(noKeys, '');
  // The password travels on argv here: a throw-away test server on loopback. --config /dev/null:
  // no user configuration; --authorized-keys: an empty file (password only, not root's keys).
  const args = ['serve', 'sftp', root, '--addr', `127.0.0.1:${port}`, '--user', 'tester', '--pass', password, '--key', folder.hostKey,
    '--authorized-keys', noKeys, '--config', '/dev/null', '-v'];
  return launchSftpDaemon('rclone serve sftp', folder, 'rclone', args, { port, username: 'tester', password, root });
}
