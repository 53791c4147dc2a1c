/**
 * An embedded SFTP server that can go down and come back on the same port with the same host key,
 * as a real server restart looks to a client. Password auth.
 */
import { generateHostKey, startEmbeddedSftpServer, type EmbeddedSftpServer } from '../../src/embedded/sftpServer.js';
import type { PushtaskConfig } from '../../src/config/schema.js';

export interface RestartableSftp {
  port: number;
  /** A transport for the config: remoteDir `in`. */
  transport: PushtaskConfig['transport'];
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startRestartableSftp(root: string, password: string): Promise<RestartableSftp> {
  const hostKey = generateHostKey();
  let server: EmbeddedSftpServer | null = await startEmbeddedSftpServer({ root, username: 'u', password, hostKey });
  const { port, hostKeyFingerprint } = server;
  return {
    port,
    transport: { type: 'sftp', host: '127.0.0.1', port, username: 'u', password, remoteDir: 'in', hostKey: hostKeyFingerprint },
    async down() {
      await server?.close();
      server = null;
    },
    async up() {
      server ??= await startEmbeddedSftpServer({ root, username: 'u', password, hostKey, port });
    },
    async close() {
      await server?.close();
      server = null;
    },
  };
}
