/**
 * A minimal HTTP server for one prom-client registry: `GET /metrics`, nothing else. Bound to
 * 127.0.0.1 unless told otherwise (metrics name files and hosts: not for every network).
 */
import http from 'node:http';
import type { Registry } from 'prom-client';
import { errorMessage } from '../shared/errors.js';
import { listen } from '../shared/httpListen.js';

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
  const listening = await listen(server, { port, host }, 'metrics');
  server.unref();
  return { url: `${listening.url}metrics`, port: listening.port, close: () => listening.close() };
}
