/**
 * Hostile file names, end to end: real TaskMaster, real subtask, drop folders, and the local
 * folder, the embedded SFTP server and ftp-srv as destinations. Each name is either delivered
 * byte-identical under the same relative path below remoteDir, or refused with a logged
 * UNSAFE_PATH error; nothing is ever written outside remoteDir, the subtask never restarts, and
 * a file dropped after the hostile ones is still delivered (no head-of-line blocking).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PushtaskConfig } from '../../src/config/schema.js';
import { startEmbeddedSftpServer, type EmbeddedSftpServer } from '../../src/embedded/sftpServer.js';
import { TaskMaster } from '../../src/index.js';
import type { UploadFailedEvent } from '../../src/master/events.js';
import { startFtpServer, type TestFtpServer } from '../helpers/ftpServer.js';
import { CONTROL_CHAR_NAMES, DELIVERABLE_NAMES, IGNORED_NAMES, REFUSED_NAMES, contentFor, crashWatch, listFiles, logRecords } from '../helpers/hostile.js';
import { recordCount } from '../helpers/hostileCounts.js';
import { useTestCertificates } from '../helpers/tls.js';
import { createWorkspace, sameBytes, testConfig, waitFor, waitForIdle, type Workspace } from '../helpers/workspace.js';

let ws: Workspace;
let master: TaskMaster | null = null;
let sftpServer: EmbeddedSftpServer | null = null;
let ftpServer: TestFtpServer | null = null;
const certs = useTestCertificates();

afterEach(async () => {
  await master?.stop();
  master = null;
  await sftpServer?.close();
  sftpServer = null;
  await ftpServer?.close();
  ftpServer = null;
  ws?.cleanup();
});

interface Destination {
  transport: PushtaskConfig['transport'];
  /** The local folder that is remoteDir. */
  remoteRoot: string;
  /** The folder remoteDir is in: must hold nothing but remoteDir afterwards. */
  parent: string;
  /** The name the server stores for a name (ftp-srv drops `"`). @default the same */
  stored?: (name: string) => string;
}

/** Drops every name, starts the agent, and checks the outcome for each. */
async function dropAndCheck(destination: Destination, deliverable: readonly string[], refused: readonly string[]): Promise<void> {
  const stored = destination.stored ?? ((name: string) => name);
  for (const name of [...deliverable, ...refused, ...IGNORED_NAMES]) ws.write(`drop/${name}`, contentFor(name));
  master = new TaskMaster(
    testConfig({
      watch: [{ dir: 'drop', stableMs: 50 }],
      spoolDir: 'spool',
      transport: destination.transport,
      retry: { quickTries: 3, quickDelayMs: 50, longDelayMs: 200 },
    }),
    { cwd: ws.dir },
  );
  const failures: UploadFailedEvent[] = [];
  master.on('upload-failed', (e) => failures.push(e));
  await master.start();
  const crashes = crashWatch(master);

  const subtaskLog = master.config.log.subtaskFile;
  const missing = () => deliverable.filter((name) => !sameBytes(ws.path('drop', name), path.join(destination.remoteRoot, stored(name))));
  await waitFor(() => missing().length === 0, `delivery of ${deliverable.length} hostile names`, 20_000).catch((error: Error) => {
    const problems = logRecords(subtaskLog).filter((r) => r.level >= 40).map((r) => r.msg);
    throw new Error(`${error.message}; missing ${JSON.stringify(missing())}; warnings and errors: ${JSON.stringify(problems.slice(-10))}`);
  });
  for (const name of refused) {
    await waitFor(
      () => logRecords(subtaskLog).some((r) => r.level >= 50 && r.msg.includes('UNSAFE_PATH') && r.msg.includes(JSON.stringify(name).slice(1, -1))),
      `a logged refusal of ${JSON.stringify(name)}`,
    );
  }
  // Still working after all of that: a later file is delivered.
  ws.write('drop/canary.txt', 'still alive');
  await waitFor(() => sameBytes(ws.path('drop/canary.txt'), path.join(destination.remoteRoot, 'canary.txt')), 'the canary after the hostile names');
  await waitForIdle(master.config.spoolDir);

  expect(listFiles(destination.remoteRoot)).toEqual([...deliverable.map(stored), 'canary.txt'].sort());
  expect(fs.readdirSync(destination.parent)).toEqual([path.basename(destination.remoteRoot)]);
  // Nothing anywhere in the workspace but the drop folder, the destination, the spool and the logs.
  const stray = listFiles(ws.dir).filter((file) => !/^(drop|spool|logs|server|certs)\//.test(file) && !file.startsWith(path.relative(ws.dir, destination.remoteRoot) + '/'));
  expect(stray).toEqual([]);
  // Each refusal is logged once and reported once as final (willRetry: false), never retried.
  for (const name of refused) {
    const lines = logRecords(subtaskLog).filter((r) => r.msg.includes('UNSAFE_PATH') && r.msg.includes(JSON.stringify(name).slice(1, -1)));
    expect(lines).toHaveLength(1);
    const reported = failures.filter((f) => f.file === ws.path('drop', name));
    expect(reported.map((f) => [f.error.code, f.willRetry])).toEqual([['UNSAFE_PATH', false]]);
  }
  crashes.assertStable();
}

describe('a file the destination refuses by itself', () => {
  it('does not hold up the files queued behind it (no head-of-line blocking)', async () => {
    ws = createWorkspace();
    // The destination has a *file* where the drop folder has a folder: every upload of
    // blocked/x.txt fails (ENOTDIR), forever, while the connection itself is fine.
    ws.write('out/remote/blocked', 'a file, not a folder');
    ws.write('drop/blocked/x.txt', 'cannot be delivered');
    master = new TaskMaster(
      testConfig({ watch: [{ dir: 'drop', stableMs: 50 }], spoolDir: 'spool', transport: { type: 'local', dir: 'out/remote' } }),
      { cwd: ws.dir },
    );
    const failures: UploadFailedEvent[] = [];
    master.on('upload-failed', (e) => failures.push(e));
    await master.start();
    const crashes = crashWatch(master);
    await waitFor(() => failures.length >= 2, 'the blocked file to fail twice');
    for (let i = 0; i < 5; i += 1) ws.write(`drop/after-${i}.txt`, `queued behind the blocked file ${i}`);
    await waitFor(
      () => [0, 1, 2, 3, 4].every((i) => sameBytes(ws.path(`drop/after-${i}.txt`), ws.path(`out/remote/after-${i}.txt`))),
      'the files queued behind the blocked one',
    );
    expect(failures.every((f) => f.file === ws.path('drop/blocked/x.txt') && f.willRetry)).toBe(true);
    crashes.assertStable();
  });
});

describe('hostile drop-folder names', () => {
  it('local folder: delivers odd names verbatim, refuses names that climb out on Windows servers', async () => {
    ws = createWorkspace();
    const names = [...DELIVERABLE_NAMES, ...CONTROL_CHAR_NAMES];
    await dropAndCheck(
      { transport: { type: 'local', dir: 'out/remote' }, remoteRoot: ws.path('out/remote'), parent: ws.path('out') },
      names,
      REFUSED_NAMES,
    );
    await recordCount('names.local', names.length + REFUSED_NAMES.length + IGNORED_NAMES.length);
  });

  it('embedded SFTP server: the same names, confined to remoteDir on the server', async () => {
    ws = createWorkspace();
    fs.mkdirSync(ws.path('server'), { recursive: true });
    sftpServer = await startEmbeddedSftpServer({ root: ws.path('server'), username: 'u', password: 'pw-hostile-names' });
    const names = [...DELIVERABLE_NAMES, ...CONTROL_CHAR_NAMES];
    await dropAndCheck(
      {
        transport: {
          type: 'sftp',
          host: '127.0.0.1',
          port: sftpServer.port,
          username: 'u',
          password: 'pw-hostile-names',
          remoteDir: 'incoming',
          hostKey: sftpServer.hostKeyFingerprint,
        },
        remoteRoot: ws.path('server/incoming'),
        parent: ws.path('server'),
      },
      names,
      REFUSED_NAMES,
    );
    await recordCount('names.sftp', names.length + REFUSED_NAMES.length + IGNORED_NAMES.length);
  });

  it('FTPS (ftp-srv): the same names; CR/LF names are refused (FTP commands cannot carry them)', async () => {
    ws = createWorkspace();
    fs.mkdirSync(ws.path('server'), { recursive: true });
    ftpServer = await startFtpServer({ root: ws.path('server') });
    await dropAndCheck(
      {
        transport: {
          type: 'ftp',
          host: ftpServer.host,
          port: ftpServer.port,
          username: ftpServer.user,
          password: ftpServer.password,
          remoteDir: 'incoming',
          tls: { ca: certs.caFile },
        },
        remoteRoot: ws.path('server/incoming'),
        parent: ws.path('server'),
        stored: (name) => name.replace(/"/g, ''), // ftp-srv's own quirk: pushtask sent the name as it is
      },
      DELIVERABLE_NAMES,
      [...REFUSED_NAMES, ...CONTROL_CHAR_NAMES],
    );
    await recordCount('names.ftp', DELIVERABLE_NAMES.length + REFUSED_NAMES.length + CONTROL_CHAR_NAMES.length + IGNORED_NAMES.length);
  });
});

describe('a name that is not valid UTF-8', () => {
  it('is reported once (it cannot be opened by its name in Node), the others are delivered, no crash', async () => {
    ws = createWorkspace();
    fs.mkdirSync(ws.path('drop'), { recursive: true });
    const badName = Buffer.concat([Buffer.from(ws.path('drop') + '/latin1-caf'), Buffer.from([0xe9]), Buffer.from('.txt')]);
    fs.writeFileSync(badName, 'bytes under a latin-1 name');
    ws.write('drop/good.txt', 'good');
    master = new TaskMaster(testConfig({ watch: [{ dir: 'drop', stableMs: 50 }], spoolDir: 'spool' }), { cwd: ws.dir });
    await master.start();
    const crashes = crashWatch(master);
    const subtaskLog = master.config.log.subtaskFile;
    await waitFor(() => sameBytes(ws.path('drop/good.txt'), ws.path('remote/good.txt')), 'the good file');
    await waitFor(() => logRecords(subtaskLog).some((r) => r.level >= 40 && /latin1-caf.*not valid UTF-8/.test(r.msg)), 'a warning about the name');
    // Several rescans later: still one warning, nothing else delivered.
    ws.write('drop/canary.txt', 'later');
    await waitFor(() => sameBytes(ws.path('drop/canary.txt'), ws.path('remote/canary.txt')), 'a later file');
    expect(logRecords(subtaskLog).filter((r) => /not valid UTF-8/.test(r.msg))).toHaveLength(1);
    expect(listFiles(ws.path('remote'))).toEqual(['canary.txt', 'good.txt']);
    crashes.assertStable();
    await recordCount('names.invalidUtf8', 1);
  });
});
