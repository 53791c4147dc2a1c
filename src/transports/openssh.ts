/**
 * Whether an SSH server is OpenSSH, from the software part of its identification line
 * (`SSH-2.0-OpenSSH_9.2p1 …`; ssh2 keeps `OpenSSH_9.2p1 …` as the connection's `_remoteVer`).
 * The SFTP and login shortcuts that rely on OpenSSH's behaviour ask this one question.
 */
export function isOpenSshVersion(remoteVer: unknown): boolean {
  return typeof remoteVer === 'string' && remoteVer.startsWith('OpenSSH_');
}
