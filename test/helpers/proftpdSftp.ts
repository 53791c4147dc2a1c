/**
 * ProFTPD with mod_sftp, run from its unpacked Debian packages: proftpd-core conflicts with vsftpd
 * (both provide ftp-server), so .ci/run `apt-get download`s proftpd-core and proftpd-mod-crypto
 * into a cache folder and `dpkg -x`es them (PROFTPD_ROOT, default /var/cache/pushtask-ci/proftpd),
 * and installs their libraries. Runs as root (it binds, then serves sessions as the user of its
 * own password file: root, RootLogin on), SFTP only, on a free port, with its own config.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort } from './daemon.js';
import { commandExists, daemonFolder, launchSftpDaemon, type SftpDaemon } from './sftpDaemon.js';

export const PROFTPD_ROOT = process.env.PROFTPD_ROOT ?? '/var/cache/pushtask-ci/proftpd';
const BINARY = path.join(PROFTPD_ROOT, 'usr/sbin/proftpd');
const MODULES = path.join(PROFTPD_ROOT, 'usr/lib/proftpd');

/** Why ProFTPD cannot run here, or null. */
export function proftpdUnavailable(): string | null {
  if (process.platform !== 'linux') return 'the ProFTPD interoperability tests run on Linux only';
  if (!fs.existsSync(BINARY) || !fs.existsSync(path.join(MODULES, 'mod_sftp.so'))) {
    return `no unpacked ProFTPD with mod_sftp at ${PROFTPD_ROOT} (see .ci/run: apt-get download proftpd-core proftpd-mod-crypto, dpkg -x)`;
  }
  if (process.getuid?.() !== 0) return 'ProFTPD must run as root (run the tests as root, as CI does)';
  if (!commandExists('ssh-keygen') || !commandExists('openssl')) return 'ssh-keygen and openssl are needed (openssh-client, openssl)';
  try {
    execFileSync(BINARY, ['--version'], { stdio: 'pipe' });
  } catch (error) {
    return `${BINARY} does not run (missing libraries? see .ci/run): ${(error as Error).message.split('\n')[0]}`;
  }
  return null;
}

/** Null (skip) when it cannot run here, except in CI (CI=true), where that is an error. */
export async function startProftpdSftp(): Promise<SftpDaemon | null> {
  const unavailable = proftpdUnavailable();
  if (unavailable) {
    if (process.env.CI === 'true') throw new Error(`ProFTPD interoperability tests cannot run: ${unavailable}`);
    return null;
  }
  const folder = daemonFolder('pushtask-proftpd-');
  const root = path.join(folder.dir, 'home');
  fs.mkdirSync(root);
  const port = await freePort();
  const password = 'proftpd-test-pw';
  const hash = execFileSync('openssl', ['passwd', '-6', '-stdin'], { input: password, encoding: 'utf8' }).trim();
  const passwd = path.join(folder.dir, 'passwd');
  fs.writeFileSync(passwd, `tester:${hash}:0:0::${root}:/bin/sh\n`, { mode: 0o600 });
  const at = (name: string) => path.join(folder.dir, name);
  const config = [
    'ServerType standalone',
    'ServerName "pushtask test"',
    'DefaultAddress 127.0.0.1',
    'SocketBindTight on',
    'UseIPv6 off',
    `Port ${port}`,
    `PidFile ${at('proftpd.pid')}`,
    `ScoreboardFile ${at('scoreboard')}`,
    `DelayTable ${at('delay')}`,
    'WtmpLog off',
    'UseReverseDNS off',
    'User root',
    'Group root',
    `ModulePath ${MODULES}`,
    'LoadModule mod_sftp.c',
    'AuthOrder mod_auth_file.c',
    `AuthUserFile ${passwd}`,
    'RequireValidShell off',
    'RootLogin on',
    'DefaultRoot ~',
    'Umask 022',
    'SFTPEngine on',
    `SFTPLog ${at('sftp.log')}`,
    `SFTPHostKey ${folder.hostKey}`,
    'SFTPAuthMethods password',
    '<Directory />',
    '  AllowOverwrite on',
    '</Directory>',
  ].join('\n');
  fs.writeFileSync(at('proftpd.conf'), `${config}\n`);
  // -n: stay in the foreground; -q: quiet about itself; -c: only our config.
  return launchSftpDaemon('proftpd', folder, BINARY, ['-n', '-q', '-c', at('proftpd.conf')], { port, username: 'tester', password, root });
}
