/**
 * Interoperability of the read side (`list`, `read`: what `pushtask monitor` uses) with Debian's
 * OpenSSH sshd and vsftpd (FTPS). Skipped, with the reason printed, where they cannot run; CI
 * installs them.
 */
import fs from 'node:fs';
import { afterEach, describe, it } from 'vitest';
import { ftpTransportSchema, sftpTransportSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/shared/logger.js';
import { FtpTransport } from '../../src/transports/ftp.js';
import { SftpTransport } from '../../src/transports/sftp.js';
import { checkReadSide, seedRemote } from '../helpers/remoteListing.js';
import { sshdSkipReason, startSshd } from '../helpers/sshd.js';
import { removeTestCertificates, testCertificates } from '../helpers/tls.js';
import { startVsftpd, vsftpdUnavailable } from '../helpers/vsftpd.js';
import { createWorkspace } from '../helpers/workspace.js';

const sshdSkip = sshdSkipReason();
if (sshdSkip) console.warn(`[list-real-servers] sshd part skipped: ${sshdSkip}`);
const vsftpdSkip = vsftpdUnavailable();
if (vsftpdSkip) console.warn(`[list-real-servers] vsftpd part skipped: ${vsftpdSkip}`);

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('list and read against real servers', { timeout: 60_000 }, () => {
  it.skipIf(sshdSkip !== null)('OpenSSH sshd', async () => {
    const sshd = (await startSshd())!;
    cleanups.push(() => sshd.stop());
    const ws = createWorkspace('pushtask-list-sshd-');
    cleanups.push(() => ws.cleanup());
    seedRemote(ws.dir);
    const config = sftpTransportSchema.parse({
      type: 'sftp', host: sshd.host, port: sshd.port, username: sshd.username, privateKey: sshd.privateKeyPath, knownHosts: sshd.knownHostsPath,
      remoteDir: `${ws.dir}/incoming`,
    });
    const transport = new SftpTransport(config, { logger: silentLogger(), stateDir: ws.path('state') });
    await transport.connect(AbortSignal.timeout(15_000));
    cleanups.push(() => transport.close());
    await checkReadSide(transport);
  });

  it.skipIf(vsftpdSkip !== null)('vsftpd over explicit FTPS (LIST without times: MDTM)', async () => {
    const certs = await testCertificates();
    cleanups.push(() => removeTestCertificates());
    const server = await startVsftpd();
    cleanups.push(() => server.close());
    const { uid, gid } = fs.statSync(server.root);
    seedRemote(server.root, { uid, gid });
    const config = ftpTransportSchema.parse({
      type: 'ftp', host: server.host, port: server.port, username: server.user, password: server.password, remoteDir: 'incoming', tls: { ca: certs.caFile },
    });
    const transport = new FtpTransport(config, { logger: silentLogger(), stateDir: server.root });
    await transport.connect(AbortSignal.timeout(15_000));
    cleanups.push(() => transport.close());
    await checkReadSide(transport);
  });
});
