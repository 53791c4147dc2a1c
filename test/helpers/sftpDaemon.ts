/**
 * What the SFTP interoperability helpers (rcloneSftp.ts, proftpdSftp.ts) share: a temp folder with
 * a fresh host key, the daemon as a detached child on a free port (so stop() can signal the
 * sessions it forks as well), and the fields a test puts into an sftp transport config.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { signalGroup, stopProcessGroup, waitForDaemon } from './daemon.js';

export interface SftpDaemon {
  host: '127.0.0.1';
  port: number;
  username: string;
  password: string;
  /** `SHA256:…` of the host key, for `hostKey`. */
  hostKeyFingerprint: string;
  /** Where a file uploaded to remote path `p` lands: `path.join(root, p)`. */
  root: string;
  /** The daemon's output so far, for failure messages. */
  log(): string;
  /** Stops the daemon and its sessions, then removes its folder. Idempotent. */
  stop(): Promise<void>;
}

export interface DaemonFolder {
  dir: string;
  /** The host key's private half (`-m PEM`: ProFTPD 1.3.8 reads no other format for RSA). */
  hostKey: string;
  hostKeyFingerprint: string;
}

/** A temp folder with an RSA host key. */
export function daemonFolder(prefix: string): DaemonFolder {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const hostKey = path.join(dir, 'host_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-m', 'PEM', '-N', '', '-f', hostKey], { stdio: 'pipe' });
  fs.chmodSync(hostKey, 0o600);
  const fingerprint = execFileSync('ssh-keygen', ['-lf', `${hostKey}.pub`], { encoding: 'utf8' }).split(' ')[1]!;
  return { dir, hostKey, hostKeyFingerprint: fingerprint };
}

export async function launchSftpDaemon(
  name: string,
  folder: DaemonFolder,
  command: string,
  args: string[],
  fields: Omit<SftpDaemon, 'host' | 'hostKeyFingerprint' | 'log' | 'stop'>,
): Promise<SftpDaemon> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const killOnExit = () => child.pid !== undefined && signalGroup(child.pid, 'SIGKILL');
  process.once('exit', killOnExit);
  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      process.off('exit', killOnExit);
      await stopProcessGroup(child);
      fs.rmSync(folder.dir, { recursive: true, force: true });
    })();
    return stopping;
  };
  try {
    await waitForDaemon(name, fields.port, child, 'SSH-2.0-', () => output, 15_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return { host: '127.0.0.1', hostKeyFingerprint: folder.hostKeyFingerprint, log: () => output, stop, ...fields };
}

export function commandExists(command: string): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v "$1"', 'sh', command], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}
