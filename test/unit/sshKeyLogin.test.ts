import ssh2 from 'ssh2';
import { describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../src/embedded/sftpServer.js';
import { signKeyLoginsAtOnce } from '../../src/transports/sshKeyLogin.js';

type Call = { username: string; key: unknown; keyAlgo: unknown; signed: Buffer | null };

/** Records what ssh2's Protocol#authPK would have sent: a check (no signer) or a signed request. */
function fakeProtocol(): { authPK: (...args: unknown[]) => void; calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    authPK(username, key, keyAlgo, cbSign) {
      if (typeof cbSign !== 'function') {
        calls.push({ username: username as string, key, keyAlgo, signed: null });
        return;
      }
      (cbSign as (data: Buffer, send: (signature: Buffer) => void) => void)(Buffer.from('session id + request'), (signature) => {
        calls.push({ username: username as string, key, keyAlgo, signed: signature });
      });
    },
  };
}

describe('key logins signed at once', () => {
  it('sends the signed request first for a private key, and the signature verifies', () => {
    const pair = generateKeyPair();
    const key = ssh2.utils.parseKey(pair.private) as ssh2.ParsedKey;
    const protocol = fakeProtocol();
    expect(signKeyLoginsAtOnce(protocol)).toBe(true);
    protocol.authPK('logger', key, undefined);
    expect(protocol.calls).toHaveLength(1);
    const [call] = protocol.calls;
    expect(call!.signed).not.toBeNull();
    const publicKey = ssh2.utils.parseKey(pair.public) as ssh2.ParsedKey;
    expect(publicKey.verify(Buffer.from('session id + request'), call!.signed!)).toBe(true);
  });

  it("leaves agent keys (public only) and calls that bring their own signer to ssh2's way", () => {
    const pair = generateKeyPair();
    const protocol = fakeProtocol();
    signKeyLoginsAtOnce(protocol);
    protocol.authPK('logger', ssh2.utils.parseKey(pair.public), undefined);
    expect(protocol.calls.map((call) => call.signed)).toEqual([null]);
    const own = Buffer.from('theirs');
    protocol.authPK('logger', ssh2.utils.parseKey(pair.private), undefined, (_data: Buffer, send: (s: Buffer) => void) => send(own));
    expect(protocol.calls[1]!.signed).toBe(own);
  });

  it('falls back to asking first when the key cannot sign', () => {
    const protocol = fakeProtocol();
    signKeyLoginsAtOnce(protocol);
    const broken = { isPrivateKey: () => true, sign: () => new Error('no such algorithm') };
    protocol.authPK('logger', broken, 'rsa-sha2-256');
    expect(protocol.calls.map((call) => call.signed)).toEqual([null]);
  });

  it('does nothing to an object without authPK', () => {
    expect(signKeyLoginsAtOnce({})).toBe(false);
    expect(signKeyLoginsAtOnce(undefined)).toBe(false);
  });
});
