/**
 * An HTTP gateway in front of an S3 server that forwards requests untouched (headers included, so
 * SigV4 signatures made for the gateway's address still verify) and lets a test see them, except
 * those it is told to
 * refuse the way a server lacking a feature does (501 NotImplemented with S3's XML error body) or
 * to lose the answer of: forwarded, carried out by the server, then the client's connection is cut.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream';

export interface S3Gateway {
  port: number;
  /** Requests answered with 501 so far. */
  refused: number;
  /** Requests whose answer was lost so far. */
  cut: number;
  close(): Promise<void>;
}

export interface S3GatewayRules {
  /** Sees every request first. */
  observe?: (request: http.IncomingMessage) => void;
  refuse?: (request: http.IncomingMessage) => boolean;
  loseAnswer?: (request: http.IncomingMessage) => boolean;
}

export async function startS3Gateway(targetPort: number, rules: S3GatewayRules): Promise<S3Gateway> {
  const gateway: S3Gateway = { port: 0, refused: 0, cut: 0, close: async () => undefined };
  const server = http.createServer((request, response) => {
    rules.observe?.(request);
    if (rules.refuse?.(request)) {
      gateway.refused += 1;
      request.resume();
      response.writeHead(501, { 'content-type': 'application/xml' });
      response.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented</Message></Error>');
      return;
    }
    const loseAnswer = rules.loseAnswer?.(request) ?? false;
    const upstream = http.request({ host: '127.0.0.1', port: targetPort, method: request.method, path: request.url, headers: request.headers }, (answer) => {
      if (loseAnswer) {
        gateway.cut += 1;
        answer.resume();
        answer.on('end', () => request.socket.destroy());
        return;
      }
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
