/**
 * The uploader's lanes on a fake transport: the scheduling rule that kept
 * ftp.test.ts "recovers through the retry path" from ever reporting a failure on a loaded machine.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { retrySchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/shared/logger.js';
import { toErrorInfo, PushtaskError } from '../../src/shared/errors.js';
import { Ledger } from '../../src/spool/ledger.js';
import { Spool } from '../../src/spool/spool.js';
import { StatusReporter } from '../../src/subtask/status.js';
import { Uploader } from '../../src/subtask/uploader.js';
import type { Transport, UploadRequest } from '../../src/transports/types.js';

let dir: string | null = null;
let uploader: Uploader | null = null;
afterEach(async () => {
  await uploader?.stop({ graceful: false });
  uploader = null;
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  dir = null;
});

/** One fake server for all lanes: up, or down (connects refused; open connections dead). */
function fakeServer() {
  const server = { up: true, connects: 0, uploads: 0, holdUploads: null as Promise<void> | null };
  const create = (): Transport => {
    let connected = false;
    return {
      description: 'fake://server',
      async connect() {
        server.connects += 1;
        // A refused connect takes a turn of the event loop, as a real one does.
        await new Promise((resolve) => setImmediate(resolve));
        if (!server.up) throw new PushtaskError('CONNECT_FAILED', 'connection refused');
        connected = true;
      },
      async upload(request: UploadRequest) {
        if (!connected || !server.up) throw new PushtaskError('UPLOAD_FAILED', 'the connection is dead');
        await server.holdUploads;
        server.uploads += 1;
        return { bytes: fs.statSync(request.localPath).size };
      },
      async close() {
        connected = false;
      },
    };
  };
  return { server, create };
}

it('uses a connected idle lane instead of re-trying a failing extra connection in a busy loop', async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-lanes-'));
  const spoolDir = path.join(dir, 'spool');
  const spool = new Spool(spoolDir);
  await spool.ensureDir();
  const { server, create } = fakeServer();
  const failures: unknown[] = [];
  uploader = new Uploader({
    createTransport: create,
    transfers: 2,
    spool,
    ledger: new Ledger(path.join(spoolDir, 'state.json')).load(),
    status: new StatusReporter(spoolDir),
    retry: retrySchema.parse({ quickTries: 3, quickDelayMs: 50, longDelayMs: 200 }),
    operationTimeoutMs: 5000,
    deadTimeMs: 60_000,
    logger: silentLogger(),
    emit: (name) => {
      if (name === 'upload-failed') failures.push(name);
    },
    describeError: toErrorInfo,
    requestSnapshot: () => undefined,
  });
  const snapshot = async (name: string) => {
    const source = path.join(dir!, name);
    fs.writeFileSync(source, `${name} ${Date.now()}\n`);
    const taken = await spool.snapshot({ kind: 'data', source, remotePath: name });
    uploader!.enqueue(taken!);
  };
  // Two files while uploads are held: both lanes connect and upload.
  let release!: () => void;
  server.holdUploads = new Promise((resolve) => (release = resolve));
  await snapshot('a.csv');
  await snapshot('b.csv');
  const until = async (condition: () => boolean) => {
    for (let i = 0; i < 500 && !condition(); i += 1) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(condition()).toBe(true);
  };
  await until(() => server.connects === 2);
  release();
  server.holdUploads = null;
  await until(() => server.uploads === 2 && uploader!.idle);

  // The server goes away; both lanes still count as connected. The next file fails on one lane.
  server.up = false;
  const connectsBefore = server.connects;
  await snapshot('a.csv');
  await new Promise((resolve) => setTimeout(resolve, 500));
  // The other, connected lane took the file (and found its connection dead): failures are
  // reported, and reconnects follow the retry schedule instead of thousands of tries.
  expect(failures.length).toBeGreaterThanOrEqual(2);
  expect(server.connects - connectsBefore).toBeLessThan(30);
});
