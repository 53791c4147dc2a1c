/**
 * A TCP proxy on loopback that simulates a real link for fault tests and link benches, in user
 * space (no netem here): it forwards to a target and counts bytes and connections, and on command
 * resets connections, cuts them after N bytes, refuses new ones, silently drops everything
 * (a blackhole), adds latency and limits bandwidth.
 *
 * Latency and bandwidth model one link shared by every connection, as a cellular modem is:
 * a chunk leaves after the bytes queued before it in its direction, and arrives `latencyMs` later.
 * Order is kept per direction. With neither set, bytes are forwarded directly (benches on
 * loopback measure the proxy's cost as little as possible).
 */
import net from 'node:net';

export interface LinkShape {
  /** One-way delay added to every byte in each direction (a round trip costs twice this). */
  latencyMs?: number;
  /** Client → server rate in bytes per second (null or 0: unlimited). */
  upBytesPerSecond?: number | null;
  /** Server → client rate in bytes per second (null or 0: unlimited). */
  downBytesPerSecond?: number | null;
}

/**
 * `hold`: nothing passes while on, bytes are kept and delivered when it ends, as TCP retransmits
 * after a short outage (connections survive). `drop`: nothing passes while on and the connections
 * open when it began stay dead for ever (a NAT mapping lost, a modem re-dialled): only their
 * keepalives and timeouts can notice. New connections during either hang (the client's connect
 * succeeds against the proxy, but no byte crosses) and carry their bytes once the outage ends, as
 * a real connect's retransmitted SYN gets through once the link is back.
 */
export type Blackhole = 'hold' | 'drop';

export interface TcpProxy {
  port: number;
  /** Bytes sent from clients to the server, and back, since start (or the last reset). */
  readonly bytesUp: number;
  readonly bytesDown: number;
  /** Connections open now. */
  readonly connections: number;
  /** Connections accepted since start (or the last resetCounters). */
  readonly accepted: number;
  /** Destroys every open connection now (a dropped link): with `reset`, both ends get a TCP RST. */
  cutAll(options?: { reset?: boolean }): void;
  /** Cuts each connection once it has carried `bytes` more bytes upstream (null: never). */
  cutUpstreamAfter(bytes: number | null): void;
  /** New connections are reset at once while refusing. */
  refuse(on: boolean): void;
  /** Starts (`hold` / `drop`) or ends (`false`) a silent outage; see {@link Blackhole}. */
  blackhole(mode: Blackhole | false): void;
  /** Changes latency and bandwidth for bytes that arrive from now on. */
  shape(link: LinkShape): void;
  resetCounters(): void;
  close(): Promise<void>;
}

/** Slices of this size at most are scheduled, so a limited link delivers smoothly. */
const SLICE_BYTES = 16 * 1024;
/** Bytes queued in one direction of one connection before its source is paused. */
const QUEUE_HIGH_BYTES = 256 * 1024;

interface Direction {
  /** When the shared link is free to start sending the next slice (ms, performance clock). */
  freeAt: number;
}

export async function startTcpProxy(
  targetPort: number,
  targetHost = '127.0.0.1',
  initialShape: LinkShape = {},
): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  const connectionsOpen = new Set<Connection>();
  let bytesUp = 0;
  let bytesDown = 0;
  let accepted = 0;
  let cutAfter: number | null = null;
  let refusing = false;
  let outage: Blackhole | false = false;
  let link: Required<LinkShape> = normalize(initialShape);
  const up: Direction = { freeAt: 0 };
  const down: Direction = { freeAt: 0 };

  interface Connection {
    /** Set by a `drop` outage: this connection never carries a byte again. */
    dead: boolean;
    /** Opened during a `drop`: held like `hold` until it ends (see Blackhole). */
    bornInDrop: boolean;
    /** Flushes what a `hold` outage kept. */
    release: Array<() => void>;
  }

  /**
   * Forwards one direction of one connection through the link's shape and outages. Slices wait in
   * one FIFO per direction of a connection, driven by one timer, so they leave in the order they
   * came: timers of different lengths set at different moments may fire out of order.
   * Returns the function that forwards the sender's half-close after the bytes before it.
   */
  function pipe(
    from: net.Socket,
    to: net.Socket,
    connection: Connection,
    direction: Direction,
    count: (bytes: number) => boolean,
    rate: () => number | null,
  ): () => void {
    let queued = 0;
    const fifo: Array<{ slice: Buffer | null; dueAt: number }> = [];
    let timer: NodeJS.Timeout | null = null;
    const deliver = (chunk: Buffer) => {
      if (connection.dead || to.destroyed) return;
      to.write(chunk);
    };
    const flush = () => {
      timer = null;
      const now = performance.now();
      while (fifo.length && fifo[0]!.dueAt <= now) {
        const { slice } = fifo.shift()!;
        if (slice === null) {
          if (!connection.dead) to.end();
          continue;
        }
        queued -= slice.length;
        deliver(slice);
      }
      if (queued <= QUEUE_HIGH_BYTES && from.isPaused()) from.resume();
      if (fifo.length) timer = setTimeout(flush, Math.max(0, fifo[0]!.dueAt - performance.now())).unref();
    };
    const enqueue = (slice: Buffer | null, dueAt: number) => {
      fifo.push({ slice, dueAt });
      if (!timer) timer = setTimeout(flush, Math.max(0, fifo[0]!.dueAt - performance.now())).unref();
    };
    const schedule = (chunk: Buffer) => {
      if (connection.dead) return;
      if (outage === 'hold' || (outage === 'drop' && connection.bornInDrop)) {
        connection.release.push(() => schedule(chunk));
        return;
      }
      if (outage === 'drop') return;
      const bps = rate();
      if (!bps && link.latencyMs === 0 && !fifo.length) {
        deliver(chunk);
        return;
      }
      for (let offset = 0; offset < chunk.length; offset += SLICE_BYTES) {
        const slice = chunk.subarray(offset, offset + SLICE_BYTES);
        const now = performance.now();
        const sendEnd = bps ? Math.max(now, direction.freeAt) + (slice.length / bps) * 1000 : now;
        if (bps) direction.freeAt = sendEnd;
        queued += slice.length;
        if (queued > QUEUE_HIGH_BYTES) from.pause();
        enqueue(slice, sendEnd + link.latencyMs);
      }
    };
    from.on('data', (chunk: Buffer) => {
      if (!count(chunk.length)) return;
      if (!link.latencyMs && !rate() && !outage && !connection.release.length && !fifo.length) {
        if (!connection.dead && !to.write(chunk)) from.pause();
        return;
      }
      schedule(chunk);
    });
    to.on('drain', () => {
      if (queued <= QUEUE_HIGH_BYTES) from.resume();
    });
    to.on('close', () => {
      if (timer) clearTimeout(timer);
    });
    // A half-close travels like data: after the bytes before it, not through a silent link.
    const end = () => {
      if (connection.dead) return;
      if (outage === 'hold' || (outage === 'drop' && connection.bornInDrop)) return void connection.release.push(end);
      const now = performance.now();
      enqueue(null, Math.max(now, direction.freeAt) + link.latencyMs);
    };
    return end;
  }

  const server = net.createServer((client) => {
    if (refusing) {
      client.resetAndDestroy();
      return;
    }
    accepted++;
    // A real link forwards packets as they come: no Nagle's algorithm in the middle of it.
    client.setNoDelay(true);
    const upstream = net.connect({ port: targetPort, host: targetHost, noDelay: true });
    const connection: Connection = { dead: false, bornInDrop: outage === 'drop', release: [] };
    connectionsOpen.add(connection);
    sockets.add(client);
    sockets.add(upstream);
    let carried = 0;
    const budget = cutAfter;
    const destroyBoth = () => {
      client.destroy();
      upstream.destroy();
    };
    const endUp = pipe(
      client,
      upstream,
      connection,
      up,
      (bytes) => {
        bytesUp += bytes;
        carried += bytes;
        if (budget !== null && carried > budget) {
          destroyBoth();
          return false;
        }
        return true;
      },
      () => link.upBytesPerSecond,
    );
    const endDown = pipe(
      upstream,
      client,
      connection,
      down,
      (bytes) => {
        bytesDown += bytes;
        return true;
      },
      () => link.downBytesPerSecond,
    );
    client.on('end', endUp);
    upstream.on('end', endDown);
    for (const socket of [client, upstream]) {
      socket.on('error', destroyBoth);
      socket.on('close', () => {
        sockets.delete(socket);
        connectionsOpen.delete(connection);
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
    get accepted() {
      return accepted;
    },
    cutAll(options = {}) {
      for (const socket of sockets) {
        if (options.reset && !socket.destroyed) socket.resetAndDestroy();
        else socket.destroy();
      }
    },
    cutUpstreamAfter(bytes) {
      cutAfter = bytes;
    },
    refuse(on) {
      refusing = on;
      if (on) for (const socket of sockets) socket.destroy();
    },
    blackhole(mode) {
      const was = outage;
      outage = mode;
      if (mode === 'drop') for (const connection of connectionsOpen) if (!connection.bornInDrop) connection.dead = true;
      if (!mode && was) {
        for (const connection of connectionsOpen) {
          connection.bornInDrop = false;
          const release = connection.release.splice(0);
          for (const send of release) send();
        }
      }
    },
    shape(next) {
      link = normalize({ ...link, ...next });
    },
    resetCounters() {
      bytesUp = 0;
      bytesDown = 0;
      accepted = 0;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function normalize(shape: LinkShape): Required<LinkShape> {
  return {
    latencyMs: shape.latencyMs ?? 0,
    upBytesPerSecond: shape.upBytesPerSecond || null,
    downBytesPerSecond: shape.downBytesPerSecond || null,
  };
}
