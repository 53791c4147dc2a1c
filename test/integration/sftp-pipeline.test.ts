/**
 * Round trips of small SFTP deliveries and appends on an open connection (sftpPipeline.ts),
 * counted, not timed: a proxy with 15 ms of latency each way counts the client's *turns* (a burst
 * of client → server bytes after the server last spoke), which is the number of round trips the
 * client waited for. Against OpenSSH (runs requests in order): 2 per small delivery, 2 per
 * append; against the embedded server (may run requests concurrently, no spare): 4.
 * Also: the spare temporary file is removed by close(), and one a lost connection left is
 * removed over the next connection.
 */
import fs from 'node:fs';
import net from 'node:net';
import pino from 'pino';
import ssh2 from 'ssh2';
import { afterEach, describe, expect, it } from 'vitest';
import { sftpTransportSchema } from '../../src/config/schema.js';
import { startEmbeddedSftpServer } from '../../src/embedded/sftpServer.js';
import { BandwidthLimiter, parseBandwidthLimit } from '../../src/shared/bandwidth.js';
import { SftpTransport } from '../../src/transports/sftp.js';
import { readySftpBeforeLimits, sftpLimitsKnown } from '../../src/transports/sftpReadyEarly.js';
import { StrayTemps } from '../../src/transports/strayTemps.js';
import { sshdSkipReason, startSshd } from '../helpers/sshd.js';
import { createWorkspace, type Workspace } from '../helpers/workspace.js';

const LATENCY_MS = 15;

let ws: Workspace;
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  ws?.cleanup();
});

interface TurnProxy {
  port: number;
  /** Client bursts since the last reset. */
  turns: number;
  reset(): void;
  cutAll(): void;
  close(): Promise<void>;
}

/** A proxy adding LATENCY_MS each way that counts the client's turns. */
async function turnProxy(targetPort: number): Promise<TurnProxy> {
  const sockets = new Set<net.Socket>();
  const state = { turns: 0, serverSpoke: true };
  const later = (to: net.Socket, chunk: Buffer) => setTimeout(() => to.destroyed || to.write(chunk), LATENCY_MS);
  const server = net.createServer((client) => {
    const upstream = net.connect({ port: targetPort, host: '127.0.0.1', noDelay: true });
    client.setNoDelay(true);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk: Buffer) => {
      if (state.serverSpoke) state.turns += 1;
      state.serverSpoke = false;
      later(upstream, chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      state.serverSpoke = true;
      later(client, chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get turns() {
      return state.turns;
    },
    reset: () => {
      state.turns = 0;
      state.serverSpoke = true;
    },
    cutAll: () => {
      for (const socket of sockets) socket.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const signal = () => AbortSignal.timeout(20_000);
const settle = () => new Promise((resolve) => setTimeout(resolve, 4 * LATENCY_MS));

function spares(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((name) => name.startsWith('.pushtask-spare.')) : [];
}

const skipReason = sshdSkipReason();
if (skipReason) console.warn(`Skipping the SFTP round-trip tests against OpenSSH: ${skipReason}`);

describe.skipIf(skipReason !== null)('SFTP round trips against OpenSSH (in-order server)', () => {
  async function setup(strays = new StrayTemps(), bandwidth: BandwidthLimiter | null = null) {
    ws = createWorkspace();
    const sshd = (await startSshd())!;
    cleanups.push(() => sshd.stop());
    const proxy = await turnProxy(sshd.port);
    cleanups.push(() => proxy.close());
    const knownHosts = ws.path('known_hosts');
    fs.writeFileSync(knownHosts, `[127.0.0.1]:${proxy.port} ${sshd.hostPublicKey}\n`);
    const remote = `${sshd.dir}/in`;
    fs.mkdirSync(remote);
    const config = sftpTransportSchema.parse({ type: 'sftp', host: '127.0.0.1', port: proxy.port, username: sshd.username, privateKey: sshd.privateKeyPath, knownHosts, remoteDir: remote });
    const make = () => {
      const transport = new SftpTransport(config, { logger: pino({ level: 'silent' }), stateDir: ws.path('state'), strays, bandwidth });
      cleanups.push(() => transport.close());
      return transport;
    };
    return { proxy, remote, make };
  }

  it('a small delivery takes 2 round trips once the connection is open, and close() removes the spare', async () => {
    const { proxy, remote, make } = await setup();
    // TCP, key exchange, login with the key (signed at once: src/transports/sshKeyLogin.ts, sent
    // right behind the service request: sshLoginAhead.ts), the SFTP channel, ready without waiting
    // for the limits (sftpReadyEarly.ts): 6 turns (the server's host-key announcement may split
    // one, and a loaded machine may split another); 8 while the login waited for SERVICE_ACCEPT,
    // 9 while the session also waited for the limits, 10 while ssh2 asked whether the key would
    // do first, 11–12 while it also began with method "none". The fewest of three logins.
    const logins: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      const probe = make();
      proxy.reset();
      await probe.connect(signal());
      logins.push(proxy.turns);
      await probe.close();
    }
    expect(Math.min(...logins)).toBeLessThanOrEqual(6);
    const transport = make();
    await transport.connect(signal());
    ws.write('a.csv', 'time,value\n1,2\n');
    await transport.upload({ localPath: ws.path('a.csv'), remotePath: 'a.csv', mtime: new Date(1_700_000_000_000), signal: signal() });
    await settle(); // the spare for the next upload opens now, off the delivery path
    expect(spares(remote)).toHaveLength(1);
    for (let i = 0; i < 3; i += 1) {
      ws.write('a.csv', `time,value\n1,2\n${i},3\n`);
      proxy.reset();
      await transport.upload({ localPath: ws.path('a.csv'), remotePath: 'a.csv', mtime: new Date(1_700_000_000_000 + i * 1000), signal: signal() });
      expect(proxy.turns).toBe(2);
      expect(fs.readFileSync(`${remote}/a.csv`, 'utf8')).toBe(`time,value\n1,2\n${i},3\n`);
      expect(fs.statSync(`${remote}/a.csv`).mtimeMs).toBe(1_700_000_000_000 + i * 1000);
      await settle();
    }
    await transport.close();
    expect(spares(remote)).toEqual([]);
  });

  it('an append takes 2 round trips: size (with the OPEN), then writes, mtime, size and CLOSE together', async () => {
    const { proxy, remote, make } = await setup();
    const transport = make();
    await transport.connect(signal());
    ws.write('log.csv', 'a\n');
    await transport.upload({ localPath: ws.path('log.csv'), remotePath: 'log.csv', mtime: new Date(), signal: signal() });
    for (let i = 0; i < 3; i += 1) {
      await settle();
      const before = fs.statSync(ws.path('log.csv')).size;
      fs.appendFileSync(ws.path('log.csv'), `${i},line\n`);
      proxy.reset();
      const size = await transport.append!.size('log.csv', signal());
      expect(size).toBe(before);
      const after = await transport.append!.write({ localPath: ws.path('log.csv'), localStart: before, remotePath: 'log.csv', remoteSize: before, mtime: new Date(), signal: signal() });
      expect(after).toBe(fs.statSync(ws.path('log.csv')).size);
      expect(proxy.turns).toBe(2);
      expect(fs.readFileSync(`${remote}/log.csv`)).toEqual(fs.readFileSync(ws.path('log.csv')));
    }
  });

  it('with a bandwidth limit, the WRITEs that wait for it stay ahead of the FSETSTAT and CLOSE sent with them', async () => {
    const bandwidth = new BandwidthLimiter(parseBandwidthLimit('64k'));
    const { remote, make } = await setup(new StrayTemps(), bandwidth);
    const transport = make();
    await transport.connect(signal());
    const data = Buffer.alloc(40 * 1024, 'x'); // beyond the 16 KiB the bucket starts with: the WRITEs wait
    for (let i = 0; i < 2; i += 1) {
      ws.write('a.bin', data);
      await transport.upload({ localPath: ws.path('a.bin'), remotePath: 'a.bin', mtime: new Date(), signal: signal() });
      expect(fs.readFileSync(`${remote}/a.bin`)).toEqual(data);
      await settle();
    }
    const before = data.length;
    fs.appendFileSync(ws.path('a.bin'), Buffer.alloc(30 * 1024, 'y'));
    await transport.append!.size('a.bin', signal());
    await transport.append!.write({ localPath: ws.path('a.bin'), localStart: before, remotePath: 'a.bin', remoteSize: before, mtime: new Date(), signal: signal() });
    expect(fs.readFileSync(`${remote}/a.bin`)).toEqual(fs.readFileSync(ws.path('a.bin')));
  });

  it('a session is ready before OpenSSH answers the limits request, and the limits still apply', async () => {
    ws = createWorkspace();
    const sshd = (await startSshd())!;
    cleanups.push(() => sshd.stop());
    const client = new ssh2.Client();
    cleanups.push(() => client.end());
    client.once('connect', () => readySftpBeforeLimits(client));
    await new Promise<void>((resolve, reject) => {
      client.once('ready', resolve).once('error', reject);
      client.connect({ host: sshd.host, port: sshd.port, username: sshd.username, privateKey: sshd.privateKey, hostVerifier: () => true });
    });
    const sftp = await new Promise<ssh2.SFTPWrapper>((resolve, reject) => client.sftp((error, session) => (error ? reject(error) : resolve(session))));
    const limits = sftp as unknown as { maxOpenHandles?: number; _maxWriteLen: number };
    // ssh2 sets maxOpenHandles from the answer; it said "ready" before that answer came.
    expect(limits.maxOpenHandles).toBeUndefined();
    await sftpLimitsKnown(sftp);
    expect(limits.maxOpenHandles).toBeGreaterThan(0);
    expect(limits._maxWriteLen).toBeGreaterThan(32 * 1024);
    // And the session works: a write and a read back.
    const file = `${sshd.dir}/limits.txt`;
    await new Promise<void>((resolve, reject) => sftp.writeFile(file, 'ok\n', (error) => (error ? reject(error) : resolve())));
    expect(fs.readFileSync(file, 'utf8')).toBe('ok\n');
  });

  it('the spare a lost connection left is removed over the next connection, not piled up', async () => {
    const strays = new StrayTemps();
    const { proxy, remote, make } = await setup(strays);
    const transport = make();
    await transport.connect(signal());
    ws.write('a.csv', 'x\n');
    await transport.upload({ localPath: ws.path('a.csv'), remotePath: 'a.csv', mtime: new Date(), signal: signal() });
    await settle();
    expect(spares(remote)).toHaveLength(1);
    proxy.cutAll();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const next = make();
    await next.connect(signal());
    // connect() sends the removals first on the new channel without waiting for their answers.
    await expect.poll(() => spares(remote)).toEqual([]);
  });
});

describe('SFTP round trips against the embedded server (may run requests concurrently)', () => {
  it('a small delivery takes 4 round trips (OPEN, WRITEs, FSETSTAT + CLOSE, rename) and leaves no spare', async () => {
    ws = createWorkspace();
    const server = await startEmbeddedSftpServer({ root: ws.path('server'), username: 'u', password: 'pw' });
    cleanups.push(() => server.close());
    const proxy = await turnProxy(server.port);
    cleanups.push(() => proxy.close());
    const config = sftpTransportSchema.parse({ type: 'sftp', host: '127.0.0.1', port: proxy.port, username: 'u', password: 'pw', remoteDir: 'in', hostKey: server.hostKeyFingerprint });
    const transport = new SftpTransport(config, { logger: pino({ level: 'silent' }), stateDir: ws.path('state') });
    cleanups.push(() => transport.close());
    await transport.connect(signal());
    ws.write('a.csv', 'x\n');
    await transport.upload({ localPath: ws.path('a.csv'), remotePath: 'a.csv', mtime: new Date(), signal: signal() });
    await settle();
    ws.write('a.csv', 'x\ny\n');
    proxy.reset();
    await transport.upload({ localPath: ws.path('a.csv'), remotePath: 'a.csv', mtime: new Date(), signal: signal() });
    expect(proxy.turns).toBe(4);
    expect(fs.readFileSync(ws.path('server', 'in', 'a.csv'), 'utf8')).toBe('x\ny\n');
    expect(spares(ws.path('server', 'in'))).toEqual([]);
  });
});
