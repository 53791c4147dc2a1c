/**
 * `pushtask monitor --serve`: the fleet page (static files shipped in the package's `web/`
 * folder: plain HTML, CSS and JavaScript, no build step, nothing loaded from elsewhere),
 * `/api/clients` (the latest cycle as JSON), `/api/history?client=NAME` (one client's backlog over
 * the monitor's lifetime) and `/metrics` (Prometheus). Read-only: GET and HEAD only.
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import type { Registry } from 'prom-client';
import { listen, type Listening } from '../shared/httpListen.js';
import type { FleetMonitor } from './fleetMonitor.js';
import { fleetRegistry } from './metrics.js';

export const DEFAULT_MONITOR_PORT = 9717;

/** `web/` beside `src/` and `dist/` (both one level below the package root). */
export const WEB_DIR = new URL('../../web/', import.meta.url);

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

/** The page loads nothing but its own files and talks only to this server. */
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export type MonitorServer = Listening;

export async function serveMonitor(monitor: FleetMonitor, { port = DEFAULT_MONITOR_PORT, host = '127.0.0.1' } = {}): Promise<MonitorServer> {
  const registry: Registry = fleetRegistry(monitor);
  const server = http.createServer((request, response) => {
    void handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      response.end(`internal error: ${error instanceof Error ? error.message : String(error)}\n`);
    });
  });

  async function handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://monitor');
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const send = (status: number, type: string, body: string | Buffer) => {
      response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...SECURITY_HEADERS });
      response.end(request.method === 'HEAD' ? undefined : body);
    };
    if (url.pathname === '/metrics') {
      send(200, registry.contentType, await registry.metrics());
      return;
    }
    if (url.pathname === '/api/clients') {
      send(200, 'application/json; charset=utf-8', JSON.stringify(monitor.snapshot));
      return;
    }
    if (url.pathname === '/api/history') {
      const client = url.searchParams.get('client') ?? '';
      send(200, 'application/json; charset=utf-8', JSON.stringify({ client, points: monitor.history.get(client) }));
      return;
    }
    const asset = STATIC[url.pathname];
    if (!asset) {
      send(404, 'text/plain; charset=utf-8', 'not found\n');
      return;
    }
    send(200, asset.type, await fs.readFile(new URL(asset.file, WEB_DIR)));
  }

  return listen(server, { port, host }, 'the fleet page');
}
