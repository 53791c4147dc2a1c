/**
 * In-order SFTP writes (src/transports/sftpWriter.ts, used for servers that refuse out-of-order
 * writes) against ssh2's fastPut (used for every other server), both into OpenSSH's sshd on
 * 127.0.0.1: one file, rounds alternating, medians. The in-order path is the fallback, so this
 * says what a server found to need it costs, not what OpenSSH users get (they keep fastPut).
 * Usage: npx tsx bench/sftpInOrder.ts [MiB=256] [rounds=5]. Needs root, sshd, ssh-keygen.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SftpClient from 'ssh2-sftp-client';
import type { SFTPWrapper } from 'ssh2';
import { maxWriteOf, writeInOrder } from '../src/transports/sftpWriter.js';
import { startSshd, sshdUnavailable } from '../test/helpers/sshd.js';

const MiB = 1024 * 1024;
const size = Number(process.argv[2] ?? 256) * MiB;
const rounds = Number(process.argv[3] ?? 5);
// As in src/transports/sftp.ts.
const PUT_CONCURRENCY = 32;
const PUT_CHUNK_BYTES = 8 * 31_952;

const unavailable = sshdUnavailable();
if (unavailable) {
  console.log(`skipped: ${unavailable}`);
  process.exit(0);
}
const sshd = (await startSshd())!;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-bench-inorder-'));
const local = path.join(dir, 'data.bin');
const block = randomBytes(MiB);
fs.writeFileSync(local, Buffer.alloc(0));
for (let at = 0; at < size; at += MiB) fs.appendFileSync(local, block);
const client = new SftpClient();
await client.connect({ host: sshd.host, port: sshd.port, username: sshd.username, privateKey: sshd.privateKey, hostVerifier: () => true } as never);
const sftp = (client as unknown as { sftp: SFTPWrapper }).sftp;
const call = <T>(start: (done: (error?: Error | null, value?: T) => void) => void) =>
  new Promise<T>((resolve, reject) => start((error, value) => (error ? reject(error) : resolve(value as T))));

async function inOrder(target: string): Promise<void> {
  const handle = await call<Buffer>((done) => sftp.open(target, 'w', done));
  const inFlight = Math.max(PUT_CONCURRENCY, Math.ceil((PUT_CONCURRENCY * PUT_CHUNK_BYTES) / maxWriteOf(sftp)));
  await writeInOrder(sftp, handle, { localPath: local, inFlight, signal: new AbortController().signal });
  await call<void>((done) => sftp.close(handle, done));
}

const times: Record<'fastPut' | 'inOrder', number[]> = { fastPut: [], inOrder: [] };
for (let round = 0; round < rounds; round += 1) {
  for (const kind of round % 2 ? (['inOrder', 'fastPut'] as const) : (['fastPut', 'inOrder'] as const)) {
    const target = path.join(dir, `out-${kind}-${round}.bin`);
    const started = process.hrtime.bigint();
    if (kind === 'fastPut') await client.fastPut(local, target, { concurrency: PUT_CONCURRENCY, chunkSize: PUT_CHUNK_BYTES });
    else await inOrder(target);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (fs.statSync(target).size !== size) throw new Error(`${kind}: wrong size`);
    fs.rmSync(target);
    times[kind].push(size / MiB / seconds);
  }
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
console.log(`${size / MiB} MiB into OpenSSH on loopback, ${rounds} rounds, load ${os.loadavg()[0]!.toFixed(1)}:`);
for (const kind of ['fastPut', 'inOrder'] as const) console.log(`  ${kind.padEnd(8)} median ${median(times[kind]).toFixed(0)} MiB/s  (${times[kind].map((v) => v.toFixed(0)).join(', ')})`);
console.log(`  in order / fastPut: ${(median(times.inOrder) / median(times.fastPut)).toFixed(2)}`);
await client.end();
await sshd.stop();
fs.rmSync(dir, { recursive: true, force: true });
