import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskMaster } from '../../src/index.js';
import type { DisconnectedEvent } from '../../src/master/events.js';
import { createWorkspace, nextEvent, sameBytes, testConfig, waitFor, type Workspace } from '../helpers/workspace.js';

let ws: Workspace;
let master: TaskMaster | null = null;

afterEach(async () => {
  await master?.stop();
  master = null;
  ws?.cleanup();
});

describe('heartbeat', () => {
  it('writes <name>.heartbeat holding intervalSec + 10 at start and every interval, and uploads it', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'x');
    master = new TaskMaster(testConfig({ watch: [{ file: 'data/a.csv' }], heartbeat: { intervalSec: 1, name: 'logger-7' } }), { cwd: ws.dir });
    const beats: number[] = [];
    master.on('heartbeat', () => beats.push(Date.now()));
    await master.start();
    await waitFor(() => fs.existsSync(ws.path('remote/logger-7.heartbeat')), 'first heartbeat uploaded');
    expect(fs.readFileSync(ws.path('data/logger-7.heartbeat'), 'utf8').trim()).toBe('11');
    expect(fs.readFileSync(ws.path('remote/logger-7.heartbeat'), 'utf8').trim()).toBe('11');
    const firstMtime = fs.statSync(ws.path('remote/logger-7.heartbeat')).mtimeMs;
    await waitFor(() => beats.length >= 2, 'second heartbeat', 5000);
    await waitFor(() => fs.statSync(ws.path('remote/logger-7.heartbeat')).mtimeMs > firstMtime, 'second heartbeat uploaded');
    await master.stop();
    expect(fs.existsSync(ws.path('data/logger-7.heartbeat'))).toBe(false); // cleaned up at stop
  });
});

describe('dead time', () => {
  it('disconnects after deadTimeMs without activity and reconnects for the next notify', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'x');
    master = new TaskMaster(testConfig({ watch: [{ file: 'data/a.csv' }], deadTimeMs: 300, intervalMs: 50 }), { cwd: ws.dir });
    const connected = nextEvent(master, 'connected');
    await master.start();
    await connected;
    const disconnected = await nextEvent<DisconnectedEvent>(master, 'disconnected', () => true, 5000);
    expect(disconnected.reason).toBe('dead-time');

    const reconnected = nextEvent(master, 'connected');
    ws.append('data/a.csv', 'y');
    master.notify('data/a.csv');
    await reconnected;
    await waitFor(() => sameBytes(ws.path('data/a.csv'), ws.path('remote/a.csv')), 'delivery after reconnect');
  });
});

describe('log level at run time', () => {
  it('setLogLevel("debug") reaches the subtask without a restart', async () => {
    ws = createWorkspace();
    ws.write('data/a.csv', 'x');
    master = new TaskMaster(testConfig({ watch: [{ file: 'data/a.csv' }] }), { cwd: ws.dir });
    await master.start();
    const pid = master.subtaskPid;
    const subtaskLog = master.config.log.subtaskFile;
    master.notify('data/a.csv');
    await nextEvent(master, 'uploaded', () => true);
    expect(fs.readFileSync(subtaskLog, 'utf8')).not.toContain('Notified:');

    master.setLogLevel('debug');
    await waitFor(() => fs.readFileSync(subtaskLog, 'utf8').includes('Log level set to debug'), 'level change logged');
    ws.append('data/a.csv', 'y');
    master.notify('data/a.csv');
    await waitFor(() => fs.readFileSync(subtaskLog, 'utf8').includes('Notified:'), 'debug line in the subtask log');
    expect(master.subtaskPid).toBe(pid);
  });
});
