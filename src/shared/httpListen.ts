/**
 * Starts an HTTP server on a port and address (port 0: a free one) and gives its base URL and an
 * idempotent close that also ends idle keep-alive connections. For the monitor's page and the
 * agent's metrics; both bind 127.0.0.1 unless told otherwise.
 */
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PushtaskError, errorMessage } from './errors.js';

export interface Listening {
  /** `http://host:port/` */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function listen(server: http.Server, { port, host }: { port: number; host: string }, what: string): Promise<Listening> {
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) =>
      reject(new PushtaskError('SERVE_FAILED', `Cannot serve ${what} on ${host}:${port}: ${errorMessage(error)}; choose another port or address`, { cause: error }));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${shownHost}:${address.port}/`,
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
