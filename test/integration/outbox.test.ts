/**
 * Drop folders as an outbox (issue 13): `afterUpload: 'delete' | { moveTo }` acts only on what the
 * server confirmed, never on a file changed since its snapshot, with its sidecar, and a SIGKILL
 * at any moment loses nothing (the next start finishes the job). Real SFTP server and real files.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startEmbeddedSftpServer, type EmbeddedSftpServer } from '../../src/embedded/sftpServer.js';
import { TaskMaster } from '../../src/index.js';
import type { PushtaskConfig } from '../../src/config/schema.js';
import { Ledger } from '../../src/spool/ledger.js';
import { outboxTempOf } from '../../src/subtask/outbox.js';
import { createWorkspace, filesUnder, sameBytes, sha256, testConfig, waitFor, type Workspace } from '../helpers/workspace.js';

const USER = 'logger';
const PASSWORD = 'outbox password';

let ws: Workspace;
let server: EmbeddedSftpServer;
let master: TaskMaster | null = null;

beforeEach(async () => {
  ws = createWorkspace('pushtask-outbox-');
  fs.mkdirSync(ws.path('server'), { recursive: true });
  server = await startEmbeddedSftpServer({ root: ws.path('server'), username: USER, password: PASSWORD });
});

afterEach(async () => {
  await master?.stop();
  master = null;
  await server.close();
  ws.cleanup();
});

const sftp = (): PushtaskConfig['transport'] => ({
  type: 'sftp',
  host: '127.0.0.1',
  port: server.port,
  username: USER,
  password: PASSWORD,
  remoteDir: 'incoming',
  hostKey: server.hostKeyFingerprint,
});

function start(config: Parameters<typeof testConfig>[0]): TaskMaster {
  master = new TaskMaster(testConfig({ transport: sftp(), spoolDir: 'spool', ...config }), { cwd: ws.dir });
  return master;
}


function dropFiles(count: number, prefix = 'f'): Map<string, string> {
  const hashes = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const name = `${i % 3 === 0 ? 'sub/' : ''}${prefix}${i}.csv`;
    const file = ws.write(`drop/${name}`, `${name}\n${'x'.repeat(i * 97)}\n`);
    hashes.set(name, sha256(file));
  }
  return hashes;
}

function expectAllOnServer(hashes: Map<string, string>): void {
  for (const [name, hash] of hashes) {
    const remote = ws.path('server/incoming', name);
    expect(fs.existsSync(remote), `${name} on the server`).toBe(true);
    expect(sha256(remote), `${name} byte-identical`).toBe(hash);
  }
}

describe('afterUpload', () => {
  it("'delete': every file is delivered byte-identical, then deleted with its sidecar", async () => {
    const hashes = dropFiles(30);
    const m = start({ watch: [{ dir: 'drop', stableMs: 50, afterUpload: 'delete' }] });
    await m.start();
    ws.write('drop/late.csv', 'dropped while running\n');
    hashes.set('late.csv', sha256(ws.path('drop/late.csv')));
    await waitFor(() => filesUnder(ws.path('drop')).length === 0, 'an empty drop folder', 20_000);
    expectAllOnServer(hashes);
    await m.stop({ forceKill: false });
    // The ledger forgets what left the folder: it does not grow with every file ever sent.
    const ledger = new Ledger(path.join(m.config.spoolDir, 'state.json')).load();
    expect(ledger.get(ws.path('drop/late.csv'))).toBeUndefined();
  });

  it("{ moveTo: 'sent' }: files and their sidecars move, sub-folders kept, names never overwritten, and sent/ is not delivered again", async () => {
    ws.write('drop/sent/a.csv', 'an older a.csv already in sent/\n');
    const hashes = dropFiles(10);
    const m = start({ watch: [{ dir: 'drop', stableMs: 50, afterUpload: { moveTo: 'sent' } }] });
    await m.start();
    await waitFor(() => filesUnder(ws.path('drop')).every((name) => name.startsWith('sent/')), 'every file moved', 20_000);
    expectAllOnServer(hashes);
    for (const [name, hash] of hashes) {
      expect(sha256(ws.path('drop/sent', name))).toBe(hash);
      expect(fs.existsSync(ws.path('drop/sent', `${name}.notify`)), `${name}'s sidecar moved`).toBe(true);
    }
    ws.write('drop/a.csv', 'a new a.csv\n');
    await waitFor(() => fs.existsSync(ws.path('drop/sent/a_1.csv')), 'the second a.csv moved as a_1.csv');
    expect(fs.readFileSync(ws.path('drop/sent/a.csv'), 'utf8')).toBe('an older a.csv already in sent/\n');
    expect(fs.readFileSync(ws.path('server/incoming/a.csv'), 'utf8')).toBe('a new a.csv\n');
    expect(fs.existsSync(ws.path('server/incoming/sent'))).toBe(false);
  });

  it('never deletes a file that changed since its snapshot: it stays and its new content is sent', async () => {
    // The outbox's own check: a delivered state is recorded, then the file changes before the
    // agent acts on it (here: while it was stopped, the ledger says an older state was delivered).
    const file = ws.write('drop/a.csv', 'first\n');
    const m1 = start({ watch: [{ dir: 'drop', stableMs: 50 }] });
    await m1.start();
    await waitFor(() => sameBytes(file, ws.path('server/incoming/a.csv')), 'first delivery');
    await m1.stop({ forceKill: false });
    fs.appendFileSync(file, 'second\n');
    // A leftover outbox temporary of that changed file (a crash between rename and unlink).
    fs.renameSync(file, outboxTempOf(file));
    const m2 = start({ watch: [{ dir: 'drop', stableMs: 50, afterUpload: 'delete' }] });
    await m2.start();
    // Deleting is rename to an outbox temporary, then unlink (sidecar first): wait for all of it.
    await waitFor(
      () => filesUnder(ws.path('drop')).length === 0 && fs.readFileSync(ws.path('server/incoming/a.csv'), 'utf8') === 'first\nsecond\n',
      'the changed file delivered, then deleted with its sidecar',
      20_000,
    );
  });

  it('finishes the job at the next start when the agent stopped between the upload and the deletion', async () => {
    const hashes = dropFiles(5);
    const keep = start({ watch: [{ dir: 'drop', stableMs: 50 }] });
    await keep.start();
    await waitFor(() => [...hashes.keys()].every((name) => fs.existsSync(ws.path('server/incoming', name))), 'all delivered');
    await keep.stop({ forceKill: false });
    // Delivered and in the ledger, still in the folder: what a kill right after the upload leaves.
    // An outbox temporary of a delivered file: a kill between the rename and the unlink.
    fs.renameSync(ws.path('drop/f1.csv'), outboxTempOf(ws.path('drop/f1.csv')));
    const m = start({ watch: [{ dir: 'drop', stableMs: 50, afterUpload: 'delete' }] });
    await m.start();
    await waitFor(() => filesUnder(ws.path('drop')).length === 0, 'the delivered files deleted at start');
    expectAllOnServer(hashes);
  });

  it('loses nothing when the subtask is SIGKILLed again and again while it uploads and deletes', async () => {
    const hashes = dropFiles(120);
    const config = { watch: [{ dir: 'drop', stableMs: 50, afterUpload: 'delete' as const }] };
    let kills = 0;
    for (let round = 0; round < 6 && filesUnder(ws.path('drop')).some((name) => !name.endsWith('.notify')); round++) {
      const m = start(config);
      await m.start();
      // Different moments in each round: mid-upload, between an upload and its deletion, mid-deletion.
      await new Promise((resolve) => setTimeout(resolve, 60 + ((round * 73) % 240)));
      await m.stop(); // SIGKILL of the subtask, at whatever it was doing
      master = null;
      kills++;
    }
    const last = start(config);
    await last.start();
    await waitFor(() => filesUnder(ws.path('drop')).length === 0, 'every file delivered and deleted (sidecars too)', 30_000);
    expect(kills).toBeGreaterThan(1);
    expectAllOnServer(hashes);
  }, 120_000);
});

describe('include / exclude', () => {
  it('takes only the files the patterns select; the rest is neither sent nor deleted', async () => {
    ws.write('drop/a.csv', 'a');
    ws.write('drop/site-1/b.csv', 'b');
    ws.write('drop/site-1/b.tmp.csv', 'scratch');
    ws.write('drop/notes.txt', 'not data');
    ws.write('drop/raw/c.csv', 'raw');
    const m = start({
      watch: [{ dir: 'drop', stableMs: 50, afterUpload: 'delete', include: ['*.csv'], exclude: ['*.tmp.csv', 'raw/**'] }],
    });
    await m.start();
    await waitFor(() => fs.existsSync(ws.path('server/incoming/a.csv')) && fs.existsSync(ws.path('server/incoming/site-1/b.csv')), 'the selected files');
    await waitFor(() => !fs.existsSync(ws.path('drop/a.csv')) && !fs.existsSync(ws.path('drop/site-1/b.csv')), 'the selected files deleted');
    await m.stop({ forceKill: false });
    expect(filesUnder(ws.path('server/incoming'))).toEqual(['a.csv', 'site-1/b.csv']);
    expect(filesUnder(ws.path('drop'))).toEqual(['notes.txt', 'raw/c.csv', 'site-1/b.tmp.csv']);
  });
});
