/**
 * OpenSSH's sshd as a child process, for interoperability tests of the sftp transport.
 *
 * Each server gets its own temp folder: a config (127.0.0.1 at a free port, `internal-sftp`,
 * no PAM), a fresh ed25519 host key, a client key pair whose public half is the only authorized
 * key, a pid file and a known_hosts file that pins the host key. Uploads go wherever the test
 * says (absolute paths; `dir` is a convenient place): the login is the current user, unchrooted.
 *
 * Prerequisites (see `sshdUnavailable()`): `/usr/sbin/sshd` and `ssh-keygen` (Debian packages
 * `openssh-server` and `openssh-client`) and root (sshd switches to the logged-in user and needs
 * its privilege-separation folder `/run/sshd`, which the helper creates when missing).
 * With CI=true a missing prerequisite is not a reason to skip: `sshdSkipReason()` returns null
 * there, so the tests run and fail with the reason.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { freePort, signalGroup, stopProcessGroup, waitForDaemon } from './daemon.js';
import os from 'node:os';
import path from 'node:path';

export const SSHD_BINARY = '/usr/sbin/sshd';
const PRIVSEP_DIR = '/run/sshd';
const START_TIMEOUT_MS = 10_000;

export interface SshdOptions {
  /** Allow password logins (the user's system password). @default false (keys only) */
  passwordAuthentication?: boolean;
  /** sshd's LogLevel; INFO logs an `Accepted …` line per login (sshd takes a keyword's first value, so not via extraConfig). @default 'ERROR' */
  logLevel?: 'ERROR' | 'INFO' | 'VERBOSE' | 'DEBUG';
  /** More sshd_config lines, e.g. `MaxStartups 100:30:200`. */
  extraConfig?: string[];
}

export interface SshdServer {
  host: '127.0.0.1';
  port: number;
  /** The current user (root in CI). */
  username: string;
  /** The client's private key (ed25519, no passphrase): file and text. */
  privateKeyPath: string;
  privateKey: string;
  /** `SHA256:…` of the host key, as `ssh-keygen -lf` prints it. */
  hostKeyFingerprint: string;
  /** `ssh-ed25519 AAAA…` */
  hostPublicKey: string;
  /** A known_hosts file with the single line `[127.0.0.1]:<port> <hostPublicKey>`. */
  knownHostsPath: string;
  /** The server's temp folder (config, keys); tests may upload below it. Removed by `stop()`. */
  dir: string;
  /** sshd's stderr so far, for failure messages. */
  log(): string;
  /** Stops sshd and every session it forked, then removes `dir`. Idempotent. */
  stop(): Promise<void>;
}

/** Why sshd cannot run here, or null when it can. */
export function sshdUnavailable(): string | null {
  if (process.platform !== 'linux') return 'the sshd interoperability tests run on Linux only';
  if (!fs.existsSync(SSHD_BINARY)) return `${SSHD_BINARY} is missing (Debian package openssh-server: apt-get install -y openssh-server openssh-client)`;
  if (!commandExists('ssh-keygen')) return 'ssh-keygen is missing (Debian package openssh-client)';
  if (process.getuid?.() !== 0) return 'sshd must run as root to log a user in (run the tests as root, as CI does)';
  return null;
}

/** The reason to skip the sshd tests, or null to run them: never skipped in CI (CI=true). */
export function sshdSkipReason(): string | null {
  return process.env.CI === 'true' ? null : sshdUnavailable();
}

/**
 * Starts sshd. Resolves to null when it cannot run here and the tests may skip (see
 * `sshdSkipReason()` for why); throws when it cannot run in CI or fails to start.
 */
export async function startSshd(options: SshdOptions = {}): Promise<SshdServer | null> {
  const unavailable = sshdUnavailable();
  if (unavailable) {
    if (sshdSkipReason() === null) throw new Error(`sshd interoperability tests cannot run: ${unavailable}`);
    return null;
  }
  fs.mkdirSync(PRIVSEP_DIR, { recursive: true, mode: 0o755 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-sshd-'));
  try {
    const keys = generateKeys(dir);
    // A free port can be taken between probing and binding: try again with another one.
    for (let attempt = 1; ; attempt += 1) {
      const port = await freePort();
      try {
        return await launch(dir, port, keys, options);
      } catch (error) {
        if (attempt >= 3 || !/Address already in use|Cannot bind/i.test((error as Error).message)) throw error;
      }
    }
  } catch (error) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

interface Keys {
  hostKeyPath: string;
  hostPublicKey: string;
  hostKeyFingerprint: string;
  privateKeyPath: string;
  authorizedKeysPath: string;
}

function generateKeys(dir: string): Keys {
  const hostKeyPath = path.join(dir, 'ssh_host_ed25519_key');
  const privateKeyPath = path.join(dir, 'client_ed25519');
  const authorizedKeysPath = path.join(dir, 'authorized_keys');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'pushtask-test-host', '-f', hostKeyPath], { stdio: 'pipe' });
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'pushtask-test-client', '-f', privateKeyPath], { stdio: 'pipe' });
  fs.copyFileSync(`${privateKeyPath}.pub`, authorizedKeysPath);
  // "256 SHA256:abc… comment (ED25519)"
  const listing = execFileSync('ssh-keygen', ['-l', '-f', `${hostKeyPath}.pub`], { encoding: 'utf8' });
  const hostKeyFingerprint = listing.split(/\s+/)[1] ?? '';
  if (!hostKeyFingerprint.startsWith('SHA256:')) throw new Error(`unexpected ssh-keygen -l output: ${listing}`);
  const [type, blob] = fs.readFileSync(`${hostKeyPath}.pub`, 'utf8').trim().split(/\s+/);
  return { hostKeyPath, hostPublicKey: `${type} ${blob}`, hostKeyFingerprint, privateKeyPath, authorizedKeysPath };
}

function sshdConfig(dir: string, port: number, keys: Keys, options: SshdOptions): string {
  const password = options.passwordAuthentication ? 'yes' : 'no';
  const lines = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${keys.hostKeyPath}`,
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${keys.authorizedKeysPath}`,
    'PubkeyAuthentication yes',
    `PasswordAuthentication ${password}`,
    'KbdInteractiveAuthentication no',
    'PermitRootLogin yes',
    'UsePAM no',
    // The temp folder's modes are not what sshd expects of a home: don't insist.
    'StrictModes no',
    'Subsystem sftp internal-sftp',
    `LogLevel ${options.logLevel ?? 'ERROR'}`,
    ...(options.extraConfig ?? []),
  ];
  return `${lines.join('\n')}\n`;
}

async function launch(dir: string, port: number, keys: Keys, options: SshdOptions): Promise<SshdServer> {
  const configPath = path.join(dir, 'sshd_config');
  fs.writeFileSync(configPath, sshdConfig(dir, port, keys, options));
  const knownHostsPath = path.join(dir, 'known_hosts');
  fs.writeFileSync(knownHostsPath, `[127.0.0.1]:${port} ${keys.hostPublicKey}\n`);

  // -D: no daemon, -e: log to stderr. sshd re-executes itself, hence the absolute path. Detached so
  // that sshd and the session processes it forks form one group that stop() can signal.
  const child = spawn(SSHD_BINARY, ['-D', '-e', '-f', configPath], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const killOnExit = () => child.pid !== undefined && signalGroup(child.pid, 'SIGKILL');
  process.once('exit', killOnExit);
  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      process.off('exit', killOnExit);
      await stopProcessGroup(child);
      fs.rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };
  try {
    await waitForDaemon('sshd', port, child, 'SSH-2.0-', () => stderr, START_TIMEOUT_MS);
  } catch (error) {
    process.off('exit', killOnExit);
    await stopProcessGroup(child);
    throw error;
  }
  return {
    host: '127.0.0.1',
    port,
    username: os.userInfo().username,
    privateKeyPath: keys.privateKeyPath,
    privateKey: fs.readFileSync(keys.privateKeyPath, 'utf8'),
    hostKeyFingerprint: keys.hostKeyFingerprint,
    hostPublicKey: keys.hostPublicKey,
    knownHostsPath,
    dir,
    log: () => stderr,
    stop,
  };
}

function commandExists(command: string): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v "$1"', 'sh', command], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}
