/**
 * `compress: true` on sftp: SSH compression (zlib@openssh.com) is negotiated with OpenSSH, and CSV
 * text costs a fraction of its size on the wire (bytes counted at a TCP proxy in front of sshd).
 * The embedded server offers no compression (see sftpServer.ts): there the option changes nothing.
 */
import fs from 'node:fs';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { sftpTransportSchema } from '../../src/config/schema.js';
import { startEmbeddedSftpServer } from '../../src/embedded/sftpServer.js';
import { sshdSkipReason, startSshd, type SshdServer } from '../helpers/sshd.js';
import { SftpTransport } from '../../src/transports/sftp.js';
import { startTcpProxy } from '../helpers/tcpProxy.js';
import { createWorkspace, type Workspace } from '../helpers/workspace.js';

let ws: Workspace;
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  ws?.cleanup();
});

const skipReason = sshdSkipReason();
if (skipReason) console.warn(`Skipping the SSH compression test against OpenSSH: ${skipReason}`);

type Login = { port: number; username: string; remoteDir: string } & ({ password: string; hostKey: string } | { privateKey: string; knownHosts: string });

/** Bytes client → server for one upload of `file` on an open connection. */
async function wireBytes(login: Login, file: string, compress: boolean, proxy: Awaited<ReturnType<typeof startTcpProxy>>): Promise<number> {
  const config = sftpTransportSchema.parse({ type: 'sftp', host: '127.0.0.1', ...login, compress });
  const transport = new SftpTransport(config, { logger: pino({ level: 'silent' }), stateDir: ws.path('state') });
  cleanups.push(() => transport.close());
  const signal = AbortSignal.timeout(30_000);
  await transport.connect(signal);
  proxy.resetCounters();
  await transport.upload({ localPath: file, remotePath: `data-${compress}.csv`, mtime: new Date(), signal });
  const bytes = proxy.bytesUp;
  await transport.close();
  return bytes;
}

function csvFile(): string {
  const file = ws.path('data.csv');
  const lines: string[] = [];
  for (let i = 0; i < 20_000; i += 1) lines.push(`2026-12-05T08:${String(Math.floor(i / 60) % 60).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}.000Z,${1000 + (i % 97)},${(Math.sin(i) * 10).toFixed(4)},ok`);
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

describe.skipIf(skipReason !== null)('sftp compress against OpenSSH', () => {
  let sshd: SshdServer;
  it('sends CSV in well under half the bytes with compress: true, and the file arrives intact', async () => {
    ws = createWorkspace();
    sshd = (await startSshd())!;
    cleanups.push(() => sshd.stop());
    const proxy = await startTcpProxy(sshd.port);
    cleanups.push(() => proxy.close());
    const file = csvFile();
    const login: Login = { port: proxy.port, username: sshd.username, privateKey: sshd.privateKeyPath, knownHosts: ws.path('known_hosts'), remoteDir: sshd.dir };
    // The proxy listens on its own port: known_hosts names that one.
    fs.writeFileSync(login.knownHosts, `[127.0.0.1]:${proxy.port} ${sshd.hostPublicKey}\n`);
    const plain = await wireBytes(login, file, false, proxy);
    const compressed = await wireBytes(login, file, true, proxy);
    expect(plain).toBeGreaterThan(fs.statSync(file).size);
    expect(compressed / plain).toBeLessThan(0.4);
    expect(fs.readFileSync(`${sshd.dir}/data-true.csv`)).toEqual(fs.readFileSync(file));
  });
});

describe('sftp compress against the embedded server', () => {
  it('still delivers: the embedded server offers no compression, so none is used', async () => {
    ws = createWorkspace();
    const server = await startEmbeddedSftpServer({ root: ws.path('server'), username: 'u', password: 'pw' });
    cleanups.push(() => server.close());
    const proxy = await startTcpProxy(server.port);
    cleanups.push(() => proxy.close());
    const file = csvFile();
    const login: Login = { port: proxy.port, username: 'u', password: 'pw', hostKey: server.hostKeyFingerprint, remoteDir: 'in' };
    const plain = await wireBytes(login, file, false, proxy);
    const compressed = await wireBytes(login, file, true, proxy);
    expect(compressed / plain).toBeGreaterThan(0.9);
    expect(fs.readFileSync(ws.path('server', 'in', 'data-true.csv'))).toEqual(fs.readFileSync(file));
  });
});
