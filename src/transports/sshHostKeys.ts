/**
 * SSH host-key verification. ssh2 accepts any host key unless given a verifier and does not read
 * known_hosts itself, so this module does: a `SHA256:` pin, a known_hosts file (plain and hashed
 * host names, `[host]:port` entries), or trust on first use pinned into a private file.
 */
import { createHash, createHmac } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** `SHA256:<base64 without padding>`, as `ssh-keygen -lf` prints it. */
export function fingerprintOf(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type stored at the start of an SSH public-key blob (e.g. `ssh-ed25519`). */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return 'unknown';
  const length = keyBlob.readUInt32BE(0);
  return keyBlob.subarray(4, 4 + length).toString('latin1');
}

/** The host names a known_hosts entry must match: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function hostPatternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  if (pattern.includes('*') || pattern.includes('?')) {
    const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
    return regex.test(name);
  }
  return pattern === name;
}

export type KnownHostsVerdict = { status: 'match' } | { status: 'unknown' } | { status: 'changed'; expected: string[] };

/** Looks the host up in known_hosts content; negated patterns and `@revoked` are honoured. */
export function checkKnownHosts(content: string, host: string, port: number, keyBlob: Buffer): KnownHostsVerdict {
  const name = knownHostsName(host, port);
  const keyType = keyTypeOf(keyBlob);
  const keyBase64 = keyBlob.toString('base64');
  const sameTypeKeys: string[] = [];
  for (const rawLine of content.split('\n')) {
    const line = rawLine.trim();
    if (!line || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    const marker = fields[0]?.startsWith('@') ? fields.shift() : undefined;
    const [patterns, type, key] = fields;
    if (!patterns || !type || !key || marker === '@cert-authority') continue;
    const list = patterns.split(',');
    if (list.some((p) => p.startsWith('!') && hostPatternMatches(p.slice(1), name))) continue;
    if (!list.some((p) => !p.startsWith('!') && hostPatternMatches(p, name))) continue;
    if (marker === '@revoked') {
      if (key === keyBase64) return { status: 'changed', expected: [] };
      continue;
    }
    if (type !== keyType) continue;
    if (key === keyBase64) return { status: 'match' };
    sameTypeKeys.push(fingerprintOf(Buffer.from(key, 'base64')));
  }
  return sameTypeKeys.length ? { status: 'changed', expected: sameTypeKeys } : { status: 'unknown' };
}

export type HostKeyPolicy =
  | { kind: 'pin'; fingerprint: string }
  | { kind: 'known-hosts'; file: string }
  | { kind: 'accept-new'; file: string };

export interface HostKeyDecision {
  accepted: boolean;
  /** Why a key was refused, written for the person who has to fix it. */
  reason?: string;
}

/** Decides about the key the server presented; `accept-new` pins an unknown key into its file. */
export function verifyHostKey(policy: HostKeyPolicy, host: string, port: number, keyBlob: Buffer): HostKeyDecision {
  const fingerprint = fingerprintOf(keyBlob);
  const where = `${host}:${port}`;
  const keyType = keyTypeOf(keyBlob);
  if (policy.kind === 'pin') {
    if (fingerprint === policy.fingerprint) return { accepted: true };
    return {
      accepted: false,
      reason: `The host key of ${where} is ${keyType} ${fingerprint}, but the config pins hostKey ${policy.fingerprint}. If the server's key really changed, update hostKey; otherwise someone may be intercepting the connection.`,
    };
  }
  const content = readIfExists(policy.file);
  const verdict = checkKnownHosts(content, host, port, keyBlob);
  if (verdict.status === 'match') return { accepted: true };
  if (verdict.status === 'changed') {
    return {
      accepted: false,
      reason: `The host key of ${where} CHANGED: it is now ${keyType} ${fingerprint}, but ${policy.file} expects ${verdict.expected.join(' or ') || 'a key that is revoked'}. If the server was reinstalled, remove its old line from ${policy.file}; otherwise someone may be intercepting the connection.`,
    };
  }
  if (policy.kind === 'accept-new') {
    fs.mkdirSync(path.dirname(policy.file), { recursive: true, mode: 0o700 });
    fs.appendFileSync(policy.file, `${knownHostsName(host, port)} ${keyType} ${keyBlob.toString('base64')}\n`, { mode: 0o600 });
    return { accepted: true };
  }
  return {
    accepted: false,
    reason: `The host key of ${where} (${keyType} ${fingerprint}) is not in ${policy.file}. Check the fingerprint with the server's administrator, then set hostKey: '${fingerprint}' in the transport config, or add the host with \`ssh-keyscan -p ${port} ${host} >> ${policy.file}\`, or use hostKey: 'accept-new' to trust it on first use.`,
  };
}

function readIfExists(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
