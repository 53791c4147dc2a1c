import { describe, expect, it } from 'vitest';
import { isOpenSshVersion } from '../../src/transports/openssh.js';
import { loginAheadOfServiceAccept } from '../../src/transports/sshLoginAhead.js';

/**
 * ssh2's Client as far as the wrapper sees it: the server's software version, and a protocol whose
 * `service()` sends the service request and whose message handlers ssh2 defines per connection
 * (SERVICE_ACCEPT starts the login; EXT_INFO records the server's signature algorithms).
 */
function fakeClient(software: string) {
  const log: string[] = [];
  const protocol = {
    service(name: string) {
      log.push(`service ${name}`);
    },
    _handlers: {
      SERVICE_ACCEPT: (_self: unknown, name: unknown) => void log.push(`login (accepted ${String(name)})`),
      EXT_INFO: (_self: unknown, _extensions: unknown) => void log.push('ext-info'),
    } as Record<string, (...args: unknown[]) => unknown>,
  };
  return { client: { _remoteVer: software, _protocol: protocol }, protocol, log };
}

describe('login sent right behind the service request (OpenSSH)', () => {
  it('starts the login on EXT_INFO and passes over the SERVICE_ACCEPT that follows', () => {
    const { client, protocol, log } = fakeClient('OpenSSH_9.2p1');
    expect(loginAheadOfServiceAccept(client)).toBe(true);
    protocol.service('ssh-userauth');
    protocol._handlers.EXT_INFO!(protocol, []);
    expect(log).toEqual(['service ssh-userauth', 'ext-info', 'login (accepted ssh-userauth)']);
    protocol._handlers.SERVICE_ACCEPT!(protocol, 'ssh-userauth');
    // A second EXT_INFO (OpenSSH sends one after the login too) starts nothing.
    protocol._handlers.EXT_INFO!(protocol, []);
    expect(log).toEqual(['service ssh-userauth', 'ext-info', 'login (accepted ssh-userauth)', 'ext-info']);
  });

  it("keeps ssh2's sequence for other servers and before the service request", () => {
    const other = fakeClient('dropbear_2022.83');
    loginAheadOfServiceAccept(other.client);
    other.protocol.service('ssh-userauth');
    other.protocol._handlers.EXT_INFO!(other.protocol, []);
    other.protocol._handlers.SERVICE_ACCEPT!(other.protocol, 'ssh-userauth');
    expect(other.log).toEqual(['service ssh-userauth', 'ext-info', 'login (accepted ssh-userauth)']);

    const early = fakeClient('OpenSSH_9.2p1');
    loginAheadOfServiceAccept(early.client);
    early.protocol._handlers.EXT_INFO!(early.protocol, []); // before the service was asked for
    early.protocol.service('ssh-userauth');
    early.protocol._handlers.SERVICE_ACCEPT!(early.protocol, 'ssh-userauth');
    expect(early.log).toEqual(['ext-info', 'service ssh-userauth', 'login (accepted ssh-userauth)']);
  });

  it('does nothing to an ssh2 without these handlers', () => {
    expect(loginAheadOfServiceAccept({})).toBe(false);
    expect(loginAheadOfServiceAccept({ _protocol: { service() {}, _handlers: {} } })).toBe(false);
  });
});

describe('isOpenSshVersion', () => {
  it('is true only for the software part OpenSSH sends', () => {
    expect(isOpenSshVersion('OpenSSH_9.2p1 Debian-2+deb12u3')).toBe(true);
    expect(isOpenSshVersion('OpenSSH_for_Windows_8.1')).toBe(true);
    for (const other of ['dropbear_2022.83', 'mod_sftp', 'ProFTPD', 'openssh_9.2', 'SSH-2.0-OpenSSH_9.2', '', undefined, 7]) {
      expect(isOpenSshVersion(other)).toBe(false);
    }
  });
});
