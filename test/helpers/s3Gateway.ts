/**
 * An HTTP gateway in front of an S3 server that refuses some requests the way a server lacking a
 * feature does (501 NotImplemented with S3's XML error body) and forwards the rest untouched
 * (headers included, so SigV4 signatures made for the gateway's address still verify).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream';

export interface S3Gateway {
  port: number;
  /** Requests answered with 501 so far. */
  refused: number;
  close(): Promise<void>;
}

export async function startS3Gateway(targetPort: number, refuse: (request: http.IncomingMessage) => boolean): Promise<S3Gateway> {
  const gateway: S3Gateway = { port: 0, refused: 0, close: async () => undefined };
  const server = http.createServer((request, response) => {
    if (refuse(request)) {
      gateway.refused += 1;
      request.resume();
      response.writeHead(501, { 'content-type': 'application/xml' });
      response.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented</Message></Error>');
      return;
    }
    const upstream = http.request({ host: '127.0.0.1', port: targetPort, method: request.method, path: request.url, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      pipeline(answer, response, () => undefined);
    });
    upstream.on('error', () => response.destroy());
    pipeline(request, upstream, () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  gateway.port = (server.address() as AddressInfo).port;
  gateway.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return gateway;
}
