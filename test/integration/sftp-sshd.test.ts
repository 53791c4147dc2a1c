/**
 * Interoperability with OpenSSH's sshd (installed by .ci/run; these tests must run in CI).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
// `.pushtask-spare.*` is the file a running agent keeps open for its next small upload
// (src/transports/sftpPipeline.ts), not a leftover: close() removes it (test/integration/sftp-pipeline.test.ts).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TaskMaster } from '../../src/index.js';
import type { UploadFailedEvent } from '../../src/master/events.js';
import { sftpTransportSchema } from '../../src/config/schema.js';
import { SftpTransport } from '../../src/transports/sftp.js';
import { sshdSkipReason, startSshd, type SshdServer } from '../helpers/sshd.js';
import { createWorkspace, nextEvent, sameBytes, testConfig, waitFor, waitForIdle, type Workspace } from '../helpers/workspace.js';

const skipReason = sshdSkipReason();
if (skipReason) console.warn(`Skipping the SFTP-against-OpenSSH tests: ${skipReason}`);

describe.skipIf(skipReason !== null)('sftp transport against OpenSSH sshd', () => {
  let sshd: SshdServer;
  let ws: Workspace;
  let master: TaskMaster | null = null;

  beforeAll(async () => {
    sshd = (await startSshd())!;
  });
  afterAll(async () => {
    await sshd?.stop();
  });
  afterEach(async () => {
    await master?.stop();
    master = null;
    ws?.cleanup();
  });

  function transport(overrides: Record<string, unknown> = {}) {
    return {
      type: 'sftp' as const,
      host: sshd.host,
      port: sshd.port,
      username: sshd.username,
      privateKey: sshd.privateKeyPath,
      knownHosts: sshd.knownHostsPath,
      remoteDir: path.join(ws.dir, 'server', 'incoming'),
      ...overrides,
    };
  }

  it('delivers with key auth and known_hosts, replacing atomically with posix-rename, keeping mtimes', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'v1\n');
    ws.write('drop/sub/b.bin', Buffer.alloc(2_000_000, 3));
    master = new TaskMaster(testConfig({ watch: [{ file: 'data/a.csv' }, { dir: 'drop', stableMs: 50 }], transport: transport() }), { cwd: ws.dir });
    await master.start();
    await waitFor(
      () => sameBytes(ws.path('data/a.csv'), ws.path('server/incoming/a.csv')) && sameBytes(ws.path('drop/sub/b.bin'), ws.path('server/incoming/sub/b.bin')),
      'delivery to sshd',
    );
    for (let i = 0; i < 10; i += 1) {
      ws.append('data/a.csv', `row ${i}\n`);
      master.notify('data/a.csv');
    }
    await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('server/incoming/a.csv')), 'replacements');
    await waitForIdle(master.config.spoolDir);
    expect(fs.statSync(ws.path('server/incoming/a.csv')).mtimeMs).toBe(Math.floor(fs.statSync(ws.path('data/a.csv')).mtimeMs / 1000) * 1000);
    expect(fs.readFileSync(master.config.log.subtaskFile, 'utf8')).not.toContain('posix-rename');
    expect(fs.readdirSync(ws.path('server/incoming')).filter((n) => n.endsWith('.pushtask-tmp') && !n.startsWith('.pushtask-spare.'))).toEqual([]);
  });

  it('logs in with RSA and ECDSA keys too, their signed request sent at once (src/transports/sshKeyLogin.ts)', async () => {
    ws = createWorkspace();
    for (const [type, bits] of [['rsa', '3072'], ['ecdsa', '256']] as const) {
      const keyPath = ws.path(`client_${type}`);
      execFileSync('ssh-keygen', ['-q', '-t', type, '-b', bits, '-N', '', '-C', `pushtask-test-${type}`, '-f', keyPath], { stdio: 'pipe' });
      fs.appendFileSync(path.join(sshd.dir, 'authorized_keys'), fs.readFileSync(`${keyPath}.pub`));
      const config = sftpTransportSchema.parse(transport({ privateKey: keyPath }));
      const sftp = new SftpTransport(config, { logger: pino({ level: 'silent' }), stateDir: ws.path(`state-${type}`) });
      try {
        await sftp.connect(AbortSignal.timeout(20_000));
        ws.write(`${type}.csv`, `signed with ${type}\n`);
        await sftp.upload({ localPath: ws.path(`${type}.csv`), remotePath: `${type}.csv`, mtime: new Date(), signal: AbortSignal.timeout(20_000) });
      } finally {
        await sftp.close();
      }
      expect(sameBytes(ws.path(`${type}.csv`), path.join(ws.dir, 'server', 'incoming', `${type}.csv`))).toBe(true);
    }
  });

  it('accepts the hostKey pin of sshd and refuses a known_hosts file that does not list it', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'pinned\n');
    ws.write('other_known_hosts', `[127.0.0.1]:${sshd.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n`);
    master = new TaskMaster(testConfig({ watch: [{ file: 'data/a.csv' }], transport: transport({ knownHosts: 'other_known_hosts' }) }), { cwd: ws.dir });
    const failed = nextEvent<UploadFailedEvent>(master, 'upload-failed');
    await master.start();
    const { error } = await failed;
    expect(error.code).toBe('HOST_KEY_REJECTED');
    expect(error.message).toContain('CHANGED');
    expect(error.message).toContain(sshd.hostKeyFingerprint);
    await master.stop();

    master = new TaskMaster(testConfig({ watch: [{ file: 'data/a.csv' }], transport: transport({ hostKey: sshd.hostKeyFingerprint, knownHosts: undefined }) }), { cwd: ws.dir });
    await master.start();
    await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('server/incoming/a.csv')), 'delivery with the pin');
  });

  it('appends only the new bytes in append mode, continuing a remote file left by an earlier run', async () => {
    ws = createWorkspace();
    const head = 'h'.repeat(50_000) + '\n';
    ws.write('data/a.csv', head);
    ws.write('server/incoming/a.csv', head.slice(0, 20_000)); // an earlier run was cut here
    master = new TaskMaster(testConfig({ watch: [{ file: 'data/a.csv', mode: 'append' }], transport: transport() }), { cwd: ws.dir });
    const sizes: number[] = [];
    master.on('uploaded', (event) => sizes.push(event.bytes));
    await master.start();
    await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('server/incoming/a.csv')), 'the rest of the file');
    for (let i = 0; i < 5; i += 1) {
      ws.append('data/a.csv', `row ${i}\n`);
      master.notify('data/a.csv');
      await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('server/incoming/a.csv')), `append ${i}`);
    }
    await waitFor(() => sizes.length >= 6, 'the upload events');
    expect(sizes).toEqual([head.length - 20_000, 6, 6, 6, 6, 6]);
  });
});
