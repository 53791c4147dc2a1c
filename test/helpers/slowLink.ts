/**
 * A slow uplink on loopback: client → server bytes at a limited rate, so uploads take seconds and
 * their progress can be watched. Server → client is not limited. A shape of the fault proxy.
 */
import { startTcpProxy } from './tcpProxy.js';

export interface SlowLink {
  port: number;
  close(): Promise<void>;
}

export async function startSlowLink(targetPort: number, bytesPerSecond: number): Promise<SlowLink> {
  const proxy = await startTcpProxy(targetPort, '127.0.0.1', { upBytesPerSecond: bytesPerSecond });
  return { port: proxy.port, close: () => proxy.close() };
}
