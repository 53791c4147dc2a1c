/**
 * The login request sent right behind the service request on OpenSSH: a round trip less per
 * login. After the key exchange ssh2 asks for the "ssh-userauth" service and waits for
 * SERVICE_ACCEPT before it logs in. OpenSSH reads a connection's messages in order and takes the
 * login once it has accepted the service, so the login need not wait for the answer. It does
 * wait for the server's EXT_INFO, which OpenSSH sends right after its NEWKEYS (ahead of
 * SERVICE_ACCEPT): that is where ssh2 learns which RSA signature algorithms the server takes.
 * So the login starts when EXT_INFO arrives, and the SERVICE_ACCEPT that follows is then passed
 * over. A server that sends no EXT_INFO, or does not name itself OpenSSH, gets ssh2's sequence.
 *
 * ssh2 has no option for this, so its protocol's message handlers are wrapped (as sshKeyLogin.ts
 * wraps `authPK`); anything unexpected (a future ssh2 that renames these) keeps ssh2's own
 * sequence, losing only the saving.
 */
import { isOpenSshVersion } from './openssh.js';

type Handler = (this: unknown, protocol: unknown, ...args: unknown[]) => unknown;

interface SshInternals {
  _remoteVer?: unknown;
  _protocol?: {
    service?: (this: unknown, name: string) => unknown;
    _handlers?: Record<string, Handler | undefined>;
  };
}

/** Wraps the connection's ssh2 protocol (call at 'connect'); returns whether it could. */
export function loginAheadOfServiceAccept(ssh: unknown): boolean {
  const client = (ssh ?? {}) as SshInternals;
  const protocol = client._protocol;
  const handlers = protocol?._handlers;
  const service = protocol?.service;
  const serviceAccept = handlers?.SERVICE_ACCEPT;
  const extInfo = handlers?.EXT_INFO;
  if (!protocol || !handlers || typeof service !== 'function' || typeof serviceAccept !== 'function' || typeof extInfo !== 'function') return false;
  let requested = false;
  let loginStarted = false;
  protocol.service = function (this: unknown, name: string) {
    if (name === 'ssh-userauth') requested = true;
    return service.call(this, name);
  };
  handlers.EXT_INFO = function (this: unknown, self: unknown, ...args: unknown[]) {
    const result = extInfo.call(this, self, ...args);
    if (requested && !loginStarted && isOpenSshVersion(client._remoteVer)) {
      loginStarted = true;
      serviceAccept.call(this, self, 'ssh-userauth');
    }
    return result;
  };
  handlers.SERVICE_ACCEPT = function (this: unknown, self: unknown, name: unknown, ...args: unknown[]) {
    if (name === 'ssh-userauth') {
      if (loginStarted) return undefined;
      loginStarted = true;
    }
    return serviceAccept.call(this, self, name, ...args);
  };
  return true;
}
