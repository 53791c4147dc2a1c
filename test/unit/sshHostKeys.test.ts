import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkKnownHosts, fingerprintOf, keyTypeOf, knownHostsName, verifyHostKey } from '../../src/transports/sshHostKeys.js';

/** An SSH public-key blob: string type, then key material (enough for these tests). */
function blob(type: string, material: Buffer = randomBytes(32)): Buffer {
  const typeBytes = Buffer.from(type);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(typeBytes.length);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(material.length);
  return Buffer.concat([header, typeBytes, len, material]);
}

const key = blob('ssh-ed25519');
const otherKey = blob('ssh-ed25519');
const line = (name: string, k: Buffer = key) => `${name} ${keyTypeOf(k)} ${k.toString('base64')}`;

function hashedName(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

describe('fingerprints', () => {
  it('are SHA256 base64 without padding, like ssh-keygen -lf', () => {
    expect(fingerprintOf(key)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(keyTypeOf(key)).toBe('ssh-ed25519');
  });
});

describe('known_hosts', () => {
  it('matches plain, comma lists, [host]:port and hashed entries', () => {
    expect(knownHostsName('10.0.0.1', 22)).toBe('10.0.0.1');
    expect(knownHostsName('10.0.0.1', 2222)).toBe('[10.0.0.1]:2222');
    expect(checkKnownHosts(line('example.org'), 'example.org', 22, key)).toEqual({ status: 'match' });
    expect(checkKnownHosts(line('a.org,example.org'), 'example.org', 22, key)).toEqual({ status: 'match' });
    expect(checkKnownHosts(line('[127.0.0.1]:2222'), '127.0.0.1', 2222, key)).toEqual({ status: 'match' });
    expect(checkKnownHosts(line('127.0.0.1'), '127.0.0.1', 2222, key)).toEqual({ status: 'unknown' });
    expect(checkKnownHosts(line(hashedName('[127.0.0.1]:2222')), '127.0.0.1', 2222, key)).toEqual({ status: 'match' });
    expect(checkKnownHosts(line('*.example.org'), 'sftp.example.org', 22, key)).toEqual({ status: 'match' });
    expect(checkKnownHosts(`# comment\n\n${line('!bad.example.org,*.example.org')}`, 'bad.example.org', 22, key)).toEqual({ status: 'unknown' });
  });

  it('reports a changed key with the fingerprint it expected, and a revoked key as changed', () => {
    const verdict = checkKnownHosts(line('example.org', otherKey), 'example.org', 22, key);
    expect(verdict).toEqual({ status: 'changed', expected: [fingerprintOf(otherKey)] });
    expect(checkKnownHosts(`@revoked ${line('example.org')}\n${line('example.org')}`, 'example.org', 22, key).status).toBe('changed');
  });

  it('ignores other key types for the same host (the server may offer several)', () => {
    const rsa = blob('ssh-rsa');
    expect(checkKnownHosts(line('example.org', rsa), 'example.org', 22, key)).toEqual({ status: 'unknown' });
  });
});

describe('verifyHostKey', () => {
  const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-hostkeys-'));

  it('accepts a matching pin and refuses another key, naming both fingerprints', () => {
    expect(verifyHostKey({ kind: 'pin', fingerprint: fingerprintOf(key) }, 'h', 22, key)).toEqual({ accepted: true });
    const refused = verifyHostKey({ kind: 'pin', fingerprint: fingerprintOf(otherKey) }, 'h', 22, key);
    expect(refused.accepted).toBe(false);
    expect(refused.reason).toContain(fingerprintOf(key));
    expect(refused.reason).toContain(fingerprintOf(otherKey));
  });

  it('refuses an unknown host with the fingerprint and the ways to trust it', () => {
    const dir = tmp();
    const decision = verifyHostKey({ kind: 'known-hosts', file: path.join(dir, 'known_hosts') }, '127.0.0.1', 2222, key);
    expect(decision.accepted).toBe(false);
    expect(decision.reason).toContain(fingerprintOf(key));
    expect(decision.reason).toContain(`hostKey: '${fingerprintOf(key)}'`);
    expect(decision.reason).toContain('ssh-keyscan -p 2222 127.0.0.1');
    fs.rmSync(dir, { recursive: true });
  });

  it('accept-new pins the first key into its file and refuses a different one later', () => {
    const dir = tmp();
    const file = path.join(dir, 'state', 'known_hosts');
    expect(verifyHostKey({ kind: 'accept-new', file }, '127.0.0.1', 2222, key)).toEqual({ accepted: true });
    expect(fs.readFileSync(file, 'utf8')).toBe(`${line('[127.0.0.1]:2222')}\n`);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(verifyHostKey({ kind: 'accept-new', file }, '127.0.0.1', 2222, key)).toEqual({ accepted: true });
    const changed = verifyHostKey({ kind: 'accept-new', file }, '127.0.0.1', 2222, otherKey);
    expect(changed.accepted).toBe(false);
    expect(changed.reason).toContain('CHANGED');
    fs.rmSync(dir, { recursive: true });
  });
});
