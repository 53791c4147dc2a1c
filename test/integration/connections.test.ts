/**
 * Connections per delivery: after the dead time closed the connection, a notify opens exactly one
 * new connection (the warm-up started by the notify), not one more for the upload that follows.
 * TCP connections are counted at a proxy with a little latency, so the login takes long enough
 * for the snapshot to be queued while it runs (the case that opened a second connection).
 */
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmbeddedSftpServer } from '../../src/embedded/sftpServer.js';
import { TaskMaster } from '../../src/index.js';
import { startTcpProxy } from '../helpers/tcpProxy.js';
import { createWorkspace, nextEvent, testConfig, type Workspace } from '../helpers/workspace.js';

let ws: Workspace;
let master: TaskMaster | null = null;
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  await master?.stop();
  master = null;
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  ws?.cleanup();
});

describe('connections per delivery', () => {
  it('one login per delivery after the dead time, with transfers 4', async () => {
    ws = createWorkspace();
    const server = await startEmbeddedSftpServer({ root: ws.path('server'), username: 'u', password: 'pw' });
    cleanups.push(() => server.close());
    const proxy = await startTcpProxy(server.port, '127.0.0.1', { latencyMs: 10 });
    cleanups.push(() => proxy.close());
    const file = ws.path('data.csv');
    fs.writeFileSync(file, 'time,value\n');
    master = new TaskMaster(
      testConfig({
        watch: [{ file }],
        transport: { type: 'sftp', host: '127.0.0.1', port: proxy.port, username: 'u', password: 'pw', remoteDir: 'in', hostKey: server.hostKeyFingerprint, transfers: 4 },
        deadTimeMs: 300,
      }),
      { cwd: ws.dir },
    );
    const disconnects: string[] = [];
    master.on('disconnected', (event) => disconnects.push(event.reason));
    const initial = nextEvent(master, 'uploaded', () => true, 20_000);
    await master.start();
    await initial;
    for (let i = 0; i < 3; i += 1) {
      const closed = disconnects.length;
      await nextEvent(master, 'disconnected', () => true, 10_000).catch(() => undefined);
      expect(disconnects.length).toBeGreaterThan(closed);
      const accepted = proxy.accepted;
      fs.appendFileSync(file, `${i},1\n`);
      const delivered = nextEvent(master, 'uploaded', () => true, 20_000);
      master.notify(file);
      await delivered;
      expect(proxy.accepted - accepted).toBe(1);
    }
  });
});
