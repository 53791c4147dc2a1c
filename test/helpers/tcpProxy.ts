/**
 * A TCP proxy on loopback for fault tests: forwards to a target, counts bytes, and on command
 * cuts every connection, cuts after N bytes, or refuses new connections for a while.
 */
import net from 'node:net';

export interface TcpProxy {
  port: number;
  /** Bytes sent from clients to the server, and back, since start (or the last reset). */
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly connections: number;
  /** Destroys every open connection now (a dropped link). */
  cutAll(): void;
  /** Cuts each connection once it has carried `bytes` more bytes upstream (null: never). */
  cutUpstreamAfter(bytes: number | null): void;
  /** New connections are reset at once while refusing. */
  refuse(on: boolean): void;
  resetCounters(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let bytesUp = 0;
  let bytesDown = 0;
  let cutAfter: number | null = null;
  let refusing = false;

  const server = net.createServer((client) => {
    if (refusing) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    sockets.add(client);
    sockets.add(upstream);
    let carried = 0;
    const budget = cutAfter;
    const destroyBoth = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      bytesUp += chunk.length;
      carried += chunk.length;
      if (budget !== null && carried > budget) {
        destroyBoth();
        return;
      }
      if (!upstream.write(chunk)) client.pause();
    });
    upstream.on('drain', () => client.resume());
    upstream.on('data', (chunk: Buffer) => {
      bytesDown += chunk.length;
      if (!client.write(chunk)) upstream.pause();
    });
    client.on('drain', () => upstream.resume());
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    for (const socket of [client, upstream]) {
      socket.on('error', destroyBoth);
      socket.on('close', () => {
        sockets.delete(socket);
        destroyBoth();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    get bytesUp() {
      return bytesUp;
    },
    get bytesDown() {
      return bytesDown;
    },
    get connections() {
      return [...sockets].length / 2;
    },
    cutAll() {
      for (const socket of sockets) socket.destroy();
    },
    cutUpstreamAfter(bytes) {
      cutAfter = bytes;
    },
    refuse(on) {
      refusing = on;
      if (on) for (const socket of sockets) socket.destroy();
    },
    resetCounters() {
      bytesUp = 0;
      bytesDown = 0;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
