/**
 * A minimal HTTP server for one prom-client registry: `GET /metrics`, nothing else. Bound to
 * 127.0.0.1 unless told otherwise (metrics name files and hosts: not for every network).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { PushtaskError, errorMessage } from '../shared/errors.js';

export interface MetricsServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function serveMetrics(registry: Registry, { port, host = '127.0.0.1' }: { port: number; host?: string }): Promise<MetricsServer> {
  const server = http.createServer((request, response) => {
    const pathname = new URL(request.url ?? '/', 'http://metrics').pathname;
    if (pathname !== '/metrics' || (request.method !== 'GET' && request.method !== 'HEAD')) {
      response.writeHead(pathname === '/metrics' ? 405 : 404, { 'content-type': 'text/plain; charset=utf-8' }).end('pushtask serves /metrics only\n');
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' }).end(request.method === 'HEAD' ? undefined : text),
      (error: unknown) => response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`cannot collect metrics: ${errorMessage(error)}\n`),
    );
  });
  // A scrape is short; never keep the host process alive for an idle keep-alive connection.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) =>
      reject(new PushtaskError('METRICS_FAILED', `Cannot serve metrics on ${host}:${port}: ${errorMessage(error)}; choose another port (or none)`, { cause: error })),
    );
    server.listen(port, host, () => resolve());
  });
  server.unref();
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${shownHost}:${address.port}/metrics`,
    port: address.port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
