/**
 * The fault proxy the link tests and benches rely on: if it did not delay, limit, hold, drop or
 * reset as it says, every figure measured through it would be wrong.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startTcpProxy, type TcpProxy } from '../helpers/tcpProxy.js';

let echo: net.Server;
let proxy: TcpProxy | undefined;

async function startEcho(): Promise<number> {
  echo = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  return (echo.address() as net.AddressInfo).port;
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Sends `bytes` and resolves with the ms until all of them came back. */
function roundTrip(socket: net.Socket, bytes: number): Promise<number> {
  const started = performance.now();
  return new Promise((resolve) => {
    let received = 0;
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received >= bytes) {
        socket.off('data', onData);
        resolve(performance.now() - started);
      }
    };
    socket.on('data', onData);
    socket.write(Buffer.alloc(bytes, 7));
  });
}

afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
  await new Promise<void>((resolve) => echo.close(() => resolve()));
});

describe('fault proxy', () => {
  it('adds its latency in each direction', async () => {
    proxy = await startTcpProxy(await startEcho(), '127.0.0.1', { latencyMs: 50 });
    const socket = await connect(proxy.port);
    const times = [await roundTrip(socket, 10), await roundTrip(socket, 10), await roundTrip(socket, 10)];
    expect(Math.min(...times)).toBeGreaterThanOrEqual(98);
    expect(proxy.accepted).toBe(1);
    socket.destroy();
  });

  it('limits bandwidth to its rate', async () => {
    proxy = await startTcpProxy(await startEcho(), '127.0.0.1', { upBytesPerSecond: 512 * 1024 });
    const socket = await connect(proxy.port);
    const ms = await roundTrip(socket, 256 * 1024);
    // 256 KiB at 512 KiB/s: 500 ms at least; a loaded machine may add, never remove.
    expect(ms).toBeGreaterThanOrEqual(480);
    expect(ms).toBeLessThan(2_000);
    socket.destroy();
  });

  it('holds bytes through a `hold` outage and delivers them after', async () => {
    proxy = await startTcpProxy(await startEcho(), '127.0.0.1');
    const socket = await connect(proxy.port);
    await roundTrip(socket, 5);
    proxy.blackhole('hold');
    const back = roundTrip(socket, 5);
    const late = await Promise.race([back, new Promise((resolve) => setTimeout(() => resolve('silent'), 300))]);
    expect(late).toBe('silent');
    proxy.blackhole(false);
    await back;
    socket.destroy();
  });

  it('keeps connections from a `drop` outage dead while new ones work after it', async () => {
    proxy = await startTcpProxy(await startEcho(), '127.0.0.1');
    const old = await connect(proxy.port);
    await roundTrip(old, 5);
    proxy.blackhole('drop');
    const lost = roundTrip(old, 5);
    proxy.blackhole(false);
    const fresh = await connect(proxy.port);
    await roundTrip(fresh, 5);
    const oldResult = await Promise.race([lost, new Promise((resolve) => setTimeout(() => resolve('dead'), 300))]);
    expect(oldResult).toBe('dead');
    expect(old.destroyed).toBe(false);
    old.destroy();
    fresh.destroy();
  });

  it('holds a connection opened during a `drop` and lets it through once the link is back (a retransmitted SYN)', async () => {
    proxy = await startTcpProxy(await startEcho(), '127.0.0.1');
    proxy.blackhole('drop');
    const during = await connect(proxy.port);
    const back = roundTrip(during, 5);
    const early = await Promise.race([back, new Promise((resolve) => setTimeout(() => resolve('held'), 150))]);
    expect(early).toBe('held');
    proxy.blackhole(false);
    expect(await back).toBeGreaterThan(0);
    during.destroy();
  });

  it('keeps the byte order of a shaped connection (many small writes, latency and a rate limit)', async () => {
    proxy = await startTcpProxy(await startEcho(), '127.0.0.1', { latencyMs: 7, upBytesPerSecond: 3 * 1024 * 1024, downBytesPerSecond: 3 * 1024 * 1024 });
    const socket = await connect(proxy.port);
    const sent = Buffer.concat(Array.from({ length: 400 }, (_, i) => Buffer.alloc(1000 + (i % 7) * 3001, i % 251)));
    const received: Buffer[] = [];
    let bytes = 0;
    const done = new Promise<void>((resolve) =>
      socket.on('data', (chunk: Buffer) => {
        received.push(chunk);
        bytes += chunk.length;
        if (bytes >= sent.length) resolve();
      }),
    );
    for (let offset = 0; offset < sent.length; offset += 1500 + (offset % 13) * 977) {
      socket.write(sent.subarray(offset, offset + 1500 + (offset % 13) * 977));
      if (offset % 7 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await done;
    expect(Buffer.concat(received).equals(sent)).toBe(true);
    socket.destroy();
  });

  it('resets connections with an RST when asked', async () => {
    proxy = await startTcpProxy(await startEcho(), '127.0.0.1');
    const socket = await connect(proxy.port);
    await roundTrip(socket, 5);
    const error = new Promise<NodeJS.ErrnoException>((resolve) => socket.once('error', resolve));
    proxy.cutAll({ reset: true });
    expect((await error).code).toBe('ECONNRESET');
  });
});
