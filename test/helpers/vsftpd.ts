/**
 * Debian's vsftpd as a child process, for interoperability tests of the ftp transport.
 *
 * Each server gets its own config in a temp folder: standalone on 127.0.0.1 at a free port,
 * passive ports on loopback, FTPS with the test certificates (explicit, implicit or off), and
 * one local user chrooted into a temp folder that stands for the server's files.
 *
 * Prerequisites (see `vsftpdUnavailable()`): `/usr/sbin/vsftpd` (Debian package `vsftpd`), root
 * (vsftpd checks local passwords through PAM and chroots), and the system user `pushtask-ftp`.
 * The helper creates that user itself only when it runs as root with CI=true: a system account
 * without a home and with /usr/sbin/nologin as its shell, whose known test password is useless
 * for anything but this FTP server. vsftpd is pointed at a PAM service name that does not
 * exist, so PAM uses `/etc/pam.d/other` (pam_unix) and accepts that shell, where Debian's
 * `/etc/pam.d/vsftpd` would insist on a shell listed in /etc/shells.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, stopProcessGroup, waitForDaemon } from './daemon.js';
import { testCertificates } from './tls.js';

export const VSFTPD_BINARY = '/usr/sbin/vsftpd';
export const VSFTPD_USER = 'pushtask-ftp';
export const VSFTPD_PASSWORD = 'pushtask-ftp-test-only';

export interface VsftpdOptions {
  /** @default 'explicit' (AUTH TLS required for logins and data) */
  tls?: 'explicit' | 'implicit' | false;
}

export interface VsftpdServer {
  host: '127.0.0.1';
  port: number;
  /** The user's (chrooted) folder: what the server calls '/'. */
  root: string;
  user: string;
  password: string;
  /** vsftpd's own log (protocol and transfers), for failure messages. */
  log(): string;
  close(): Promise<void>;
}

/** Why the vsftpd tests cannot run here, or null when they can (creating the test user in CI). */
export function vsftpdUnavailable(): string | null {
  if (!fs.existsSync(VSFTPD_BINARY)) return `${VSFTPD_BINARY} is missing (Debian package vsftpd: apt-get install -y vsftpd)`;
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return 'vsftpd needs root to log local users in and to chroot them';
  if (process.env.CI === 'true') return setUpTestUser();
  if (userExists(VSFTPD_USER)) return null;
  return (
    `the test user ${VSFTPD_USER} does not exist; run the tests once as root with CI=true to create it, or: ` +
    `useradd --system --no-create-home --home-dir / --shell /usr/sbin/nologin ${VSFTPD_USER} && echo '${VSFTPD_USER}:${VSFTPD_PASSWORD}' | chpasswd`
  );
}

/**
 * Creates (or re-asserts) the test user. Its home is '/' because vsftpd changes into the home
 * folder before `local_root`, and a missing one ends the session ("500 OOPS: cannot change directory").
 */
function setUpTestUser(): string | null {
  const account = ['--home', '/', '--shell', '/usr/sbin/nologin'];
  try {
    if (userExists(VSFTPD_USER)) execFileSync('usermod', [...account, VSFTPD_USER], { stdio: 'pipe' });
    else execFileSync('useradd', ['--system', '--no-create-home', ...account, VSFTPD_USER], { stdio: 'pipe' });
    execFileSync('chpasswd', [], { input: `${VSFTPD_USER}:${VSFTPD_PASSWORD}\n`, stdio: ['pipe', 'pipe', 'pipe'] });
    return null;
  } catch (error) {
    return `could not set up the test user ${VSFTPD_USER}: ${(error as Error).message}`;
  }
}

export async function startVsftpd(options: VsftpdOptions = {}): Promise<VsftpdServer> {
  const mode = options.tls ?? 'explicit';
  const certificates = await testCertificates();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-vsftpd-'));
  fs.chmodSync(dir, 0o755);
  const root = path.join(dir, 'root');
  const empty = path.join(dir, 'empty');
  fs.mkdirSync(root);
  fs.mkdirSync(empty, { mode: 0o755 });
  const { uid, gid } = userIds(VSFTPD_USER);
  fs.chownSync(root, uid, gid);
  const port = await freePort();
  const pasvMin = 20_000 + Math.floor(Math.random() * 40_000);
  const logFile = path.join(dir, 'vsftpd.log');
  const configFile = path.join(dir, 'vsftpd.conf');
  fs.writeFileSync(
    configFile,
    vsftpdConfig({ port, pasvMin, pasvMax: pasvMin + 50, root, empty, logFile, mode, certFile: certificates.certFile, keyFile: certificates.keyFile }),
  );

  const child = spawn(VSFTPD_BINARY, [configFile], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const log = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '');
  try {
    // An implicit-TLS listener waits for a ClientHello: accepting the connection is enough.
    await waitForDaemon('vsftpd', port, child, mode === 'implicit' ? 'connect' : '220', () => stderr);
  } catch (error) {
    await stopProcessGroup(child);
    throw error;
  }
  return {
    host: '127.0.0.1',
    port,
    root,
    user: VSFTPD_USER,
    password: VSFTPD_PASSWORD,
    log,
    close: async () => {
      await stopProcessGroup(child);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface ConfigValues {
  port: number;
  pasvMin: number;
  pasvMax: number;
  root: string;
  empty: string;
  logFile: string;
  mode: 'explicit' | 'implicit' | false;
  certFile: string;
  keyFile: string;
}

function vsftpdConfig(v: ConfigValues): string {
  const lines = [
    // Standalone, in the foreground, as the test's child.
    'listen=YES',
    'listen_ipv6=NO',
    'listen_address=127.0.0.1',
    `listen_port=${v.port}`,
    'background=NO',
    // One local user, chrooted into a temp folder it may write.
    'anonymous_enable=NO',
    'local_enable=YES',
    'write_enable=YES',
    'local_umask=022',
    `local_root=${v.root}`,
    'chroot_local_user=YES',
    'allow_writeable_chroot=YES',
    `secure_chroot_dir=${v.empty}`,
    'pam_service_name=pushtask-vsftpd-test',
    'userlist_enable=NO',
    'tcp_wrappers=NO',
    // Passive data connections on loopback only.
    'pasv_enable=YES',
    'pasv_address=127.0.0.1',
    `pasv_min_port=${v.pasvMin}`,
    `pasv_max_port=${v.pasvMax}`,
    'connect_from_port_20=NO',
    // Containers and sandboxes often refuse vsftpd's seccomp filter and network namespaces.
    'seccomp_sandbox=NO',
    'isolate_network=NO',
    'isolate=NO',
    // The protocol log explains a failing test.
    'xferlog_enable=YES',
    'xferlog_std_format=NO',
    'log_ftp_protocol=YES',
    `vsftpd_log_file=${v.logFile}`,
  ];
  if (v.mode) {
    lines.push(
      'ssl_enable=YES',
      `rsa_cert_file=${v.certFile}`,
      `rsa_private_key_file=${v.keyFile}`,
      'force_local_logins_ssl=YES',
      'force_local_data_ssl=YES',
      'require_ssl_reuse=NO',
      'ssl_request_cert=NO',
      // vsftpd's default cipher list (DES-CBC3-SHA) is disabled in today's OpenSSL.
      'ssl_ciphers=HIGH',
      `implicit_ssl=${v.mode === 'implicit' ? 'YES' : 'NO'}`,
    );
  } else {
    lines.push('ssl_enable=NO');
  }
  return `${lines.join('\n')}\n`;
}

function userExists(name: string): boolean {
  try {
    execFileSync('id', ['-u', name], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

function userIds(name: string): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
  return { uid, gid };
}
