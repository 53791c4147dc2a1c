/**
 * Key logins in one round trip. ssh2 first asks the server whether a key would be accepted (a
 * publickey request without a signature, answered PK_OK) and only then sends the signed request:
 * a round trip spent on every login, which on a cellular link is 100 ms or more per reconnect.
 * RFC 4252 §7 lets a client send the signed request straight away (OpenSSH, ProFTPD and Go's
 * x/crypto/ssh servers accept it); a refused key is answered USERAUTH_FAILURE either way, and ssh2
 * goes on to its next method or key algorithm as before.
 *
 * ssh2 has no option for this, so its protocol object's `authPK` is wrapped: a call without a
 * signer, for a private key held in memory, gets one that signs at once. Agent keys (the agent
 * signs) and anything unexpected go through unchanged, so a future ssh2 that renames this only
 * loses the saving.
 */

interface SigningKey {
  isPrivateKey(): boolean;
  sign(data: Buffer, hash?: string): Buffer | Error;
}

type AuthPK = (username: string, key: unknown, keyAlgo?: unknown, cbSign?: unknown) => unknown;

/** The hash ssh2 signs with for each RSA signature algorithm (other key types imply theirs). */
const HASH_OF_ALGO: Record<string, string> = { 'rsa-sha2-256': 'sha256', 'rsa-sha2-512': 'sha512', 'ssh-rsa': 'sha1' };

function isSigningKey(key: unknown): key is SigningKey {
  const candidate = key as Partial<SigningKey> | null;
  return typeof candidate?.sign === 'function' && typeof candidate.isPrivateKey === 'function' && candidate.isPrivateKey();
}

/** Wraps `protocol.authPK` (ssh2's Protocol, per connection); returns whether it could. */
export function signKeyLoginsAtOnce(protocol: unknown): boolean {
  const target = protocol as { authPK?: AuthPK } | null | undefined;
  const authPK = target?.authPK;
  if (!target || typeof authPK !== 'function') return false;
  target.authPK = function (this: unknown, username, key, keyAlgo, cbSign) {
    if (cbSign !== undefined || (keyAlgo !== undefined && typeof keyAlgo !== 'string') || !isSigningKey(key)) {
      return authPK.call(this, username, key, keyAlgo, cbSign);
    }
    const hash = typeof keyAlgo === 'string' ? HASH_OF_ALGO[keyAlgo] : undefined;
    return authPK.call(this, username, key, keyAlgo, (data: Buffer, send: (signature: Buffer) => void) => {
      const signature = key.sign(data, hash);
      // A key that cannot sign here takes ssh2's own path (ask first), which reports the error.
      if (signature instanceof Error) authPK.call(this, username, key, keyAlgo);
      else send(signature);
    });
  };
  return true;
}
