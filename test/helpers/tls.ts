/**
 * Test certificates: a private CA and a server certificate it signed, valid for `localhost` and
 * 127.0.0.1, written as PEM files. A client that is not given the CA sees what it would see with
 * a self-signed server: a certificate it cannot verify.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generate } from 'selfsigned';
import { afterAll, beforeAll } from 'vitest';

export interface TestCertificates {
  /** PEM files, readable by other users (vsftpd reads them after dropping privileges). */
  caFile: string;
  certFile: string;
  keyFile: string;
  ca: string;
  cert: string;
  key: string;
}

let cached: { dir: string; certificates: Promise<TestCertificates> } | null = null;

/** One set per test file: RSA key generation is slow enough to matter across many tests. */
export function testCertificates(): Promise<TestCertificates> {
  if (!cached) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-certs-'));
    cached = { dir, certificates: createCertificates(dir) };
  }
  return cached.certificates;
}

/**
 * For a test file: the certificates, filled in by a beforeAll hook and removed by an afterAll one.
 * Read its fields inside tests (they are empty before the hook ran).
 */
export function useTestCertificates(): TestCertificates {
  const certificates = {} as TestCertificates;
  beforeAll(async () => {
    Object.assign(certificates, await testCertificates());
  });
  afterAll(() => removeTestCertificates());
  return certificates;
}

/** For afterAll: removes the files (vitest ends its workers without running exit handlers). */
export function removeTestCertificates(): void {
  if (cached) fs.rmSync(cached.dir, { recursive: true, force: true });
  cached = null;
}

async function createCertificates(dir: string): Promise<TestCertificates> {
  const days = 7;
  const notAfterDate = new Date(Date.now() + days * 86_400_000);
  const authority = await generate([{ name: 'commonName', value: 'pushtask test CA' }], {
    algorithm: 'sha256',
    keySize: 2048,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const server = await generate([{ name: 'commonName', value: 'localhost' }], {
    algorithm: 'sha256',
    keySize: 2048,
    notAfterDate,
    ca: { key: authority.private, cert: authority.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  });
  const write = (name: string, content: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, content, { mode: 0o644 });
    return file;
  };
  fs.chmodSync(dir, 0o755);
  return {
    caFile: write('ca.pem', authority.cert),
    certFile: write('server.pem', server.cert),
    keyFile: write('server-key.pem', server.private),
    ca: authority.cert,
    cert: server.cert,
    key: server.private,
  };
}
