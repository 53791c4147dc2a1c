/**
 * A `pushtask watch` scene for CLI tests: a workspace with a drop folder `drop/`, the embedded SFTP
 * server (with a fixed host key, so it can be stopped and started again on the same port), an
 * optional slow link in front of it, and the real CLI processes, all cleaned up by `cleanup()`.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';
import { expect } from 'vitest';
import { generateHostKey, startEmbeddedSftpServer, type EmbeddedSftpServer } from '../../src/embedded/sftpServer.js';
import type { AgentStatus } from '../../src/subtask/status.js';
import { fingerprintOf } from '../../src/transports/sshHostKeys.js';
import { runCli, startCli, type CliRun, type RunningCli } from './cli.js';
import { startSlowLink, type SlowLink } from './slowLink.js';
import { createWorkspace, sha256IfPresent, type Workspace } from './workspace.js';

export const PASSWORD = 'watch-test-Pa55word';
const HOST_KEY = generateHostKey();
export const HOST_KEY_FINGERPRINT = fingerprintOfPrivateKey(HOST_KEY);

function fingerprintOfPrivateKey(key: string): string {
  const parsed = ssh2.utils.parseKey(key);
  if (parsed instanceof Error || Array.isArray(parsed)) throw new Error('cannot parse the test host key');
  return fingerprintOf(parsed.getPublicSSH());
}

export const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

export class WatchFixture {
  readonly ws: Workspace = createWorkspace('pushtask-watch-');
  /** The config reads the password from here, as a service's EnvironmentFile would provide it. */
  readonly env = { ...process.env, TEST_SFTP_PASSWORD: PASSWORD };
  server: EmbeddedSftpServer | null = null;
  link: SlowLink | null = null;
  readonly #processes: RunningCli[] = [];

  constructor() {
    fs.mkdirSync(this.ws.path('drop'));
  }

  async startServer(port = 0): Promise<EmbeddedSftpServer> {
    this.server = await startEmbeddedSftpServer({ root: this.ws.path('server'), username: 'logger', password: PASSWORD, hostKey: HOST_KEY, port });
    return this.server;
  }

  async startSlowLink(bytesPerSecond: number): Promise<SlowLink> {
    this.link = await startSlowLink(this.server!.port, bytesPerSecond);
    return this.link;
  }

  /** pushtask.config.ts: the drop folder, over SFTP to `port`, one transfer at a time. */
  writeConfig(port: number, extra = ''): void {
    this.ws.write(
      'pushtask.config.ts',
      `export default {
  watch: [{ dir: 'drop', stableMs: 100, create: true }],
  transport: { type: 'sftp', host: '127.0.0.1', port: ${port}, username: 'logger', password: process.env.TEST_SFTP_PASSWORD,
               hostKey: '${HOST_KEY_FINGERPRINT}', remoteDir: 'in', transfers: 1 },
  intervalMs: 200,
  retry: { quickTries: 100, quickDelayMs: 200 },
  log: { console: false },
  ${extra}
};
`,
    );
  }

  watch(): RunningCli {
    const running = startCli(['watch', '--config', 'pushtask.config.ts'], { cwd: this.ws.dir, env: this.env });
    this.#processes.push(running);
    return running;
  }

  run(args: string[]): Promise<CliRun> {
    return runCli(args, { cwd: this.ws.dir, env: this.env });
  }

  async statusJson(): Promise<AgentStatus> {
    const run = await this.run(['status', '--config', 'pushtask.config.ts', '--json']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    return JSON.parse(run.stdout) as AgentStatus;
  }

  /** status.json as the agent last wrote it (no CLI round trip: for waiting). */
  readStatus(): AgentStatus | null {
    const file = this.ws.path('drop/upload/sftp/status.json');
    return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as AgentStatus) : null;
  }

  /** Drops a file the way a careful producer does: a temporary name, then a rename. */
  dropFile(name: string, bytes: number): string {
    const temp = this.ws.write(`drop/${name}.part`, Buffer.alloc(bytes, name.charCodeAt(0)));
    fs.renameSync(temp, this.ws.path('drop', name));
    return this.ws.path('drop', name);
  }

  /**
   * Hashes of every file below `dir` (the spool's snapshots among them, whatever they are called).
   * A running agent's temporary files (status.json's atomic writes) may be renamed away between
   * the listing and the read: those are skipped, not an error.
   */
  hashesBelow(dir: string): Set<string> {
    const hashes = new Set<string>();
    for (const entry of fs.readdirSync(this.ws.path(dir), { recursive: true, withFileTypes: true })) {
      const hash = entry.isFile() ? sha256IfPresent(path.join(entry.parentPath, entry.name)) : undefined;
      if (hash !== undefined) hashes.add(hash);
    }
    return hashes;
  }

  async cleanup(): Promise<void> {
    for (const running of this.#processes.splice(0)) {
      running.child.kill('SIGKILL');
      await running.done;
    }
    await this.link?.close();
    await this.server?.close();
    this.ws.cleanup();
  }
}
