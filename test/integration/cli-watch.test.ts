/**
 * `pushtask watch` as a real process against the embedded SFTP server behind a slow link:
 * delivery, a graceful stop that finishes the queue, and a stop bounded by gracefulTimeoutMs,
 * with nothing lost either way.
 */
import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WatchFixture, sha256 } from '../helpers/watchFixture.js';
import { sameBytes, waitFor } from '../helpers/workspace.js';

const MiB = 1024 * 1024;
let f: WatchFixture;

beforeEach(() => {
  f = new WatchFixture();
});

afterEach(async () => {
  await f.cleanup();
});

describe('pushtask watch', { timeout: 60_000 }, () => {
  it('delivers dropped files; SIGTERM lets the queue finish and exits 0 with nothing lost', async () => {
    await f.startServer();
    const link = await f.startSlowLink(4 * MiB);
    // A generous graceful timeout: this test is about finishing the queue, the next about the bound.
    f.writeConfig(link.port, 'gracefulTimeoutMs: 30000,');
    const running = f.watch();
    await running.waitForOutput('Ctrl-C stops');
    const names = ['a.bin', 'b.bin', 'c.bin', 'd.bin', 'e.bin'];
    const files = names.map((name) => f.dropFile(name, MiB));
    await waitFor(() => fs.existsSync(f.ws.path('server/in/a.bin')), 'the first delivery', 20_000);

    running.child.kill('SIGTERM');
    const run = await running.done;
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/SIGTERM: stopping gracefully[^]*\nstopped\n$/);
    for (const [index, name] of names.entries()) expect(sameBytes(files[index]!, f.ws.path('server/in', name))).toBe(true);

    const status = await f.statusJson();
    expect(status.running).toBe(false);
    expect(status.queue).toEqual({ length: 0, bytes: 0, items: [] });
    expect(status.counters.uploads).toBe(5);
    for (const [index, name] of names.entries()) expect(status.files[files[index]!]?.lastUpload).toMatchObject({ remotePath: name, bytes: MiB });
  });

  it('a stop is bounded by gracefulTimeoutMs; the cut upload stays in the spool and is delivered at the next start', async () => {
    const server = await f.startServer();
    const link = await f.startSlowLink(0.5 * MiB);
    f.writeConfig(link.port, 'gracefulTimeoutMs: 1000,');
    const first = f.watch();
    await first.waitForOutput('Ctrl-C stops');
    const file = f.dropFile('big.bin', 16 * MiB); // about 32 s over this link
    await waitFor(() => f.readStatus()?.inFlight.length === 1, 'the upload to start', 20_000);

    const stopAsked = Date.now();
    first.child.kill('SIGTERM');
    const run = await first.done;
    expect(run.code).toBe(0);
    // gracefulTimeoutMs (1 s), then SIGTERM to the subtask and SIGKILL 2 s later at most: far less
    // than the upload would take (the margin is for a loaded machine).
    expect(Date.now() - stopAsked).toBeLessThan(15_000);
    expect(fs.existsSync(f.ws.path('server/in/big.bin'))).toBe(false);
    expect(f.hashesBelow('drop/upload/sftp')).toContain(sha256(fs.readFileSync(file)));

    // Next start, over a fast link: the spooled snapshot goes first.
    f.writeConfig(server.port);
    const second = f.watch();
    await waitFor(() => sameBytes(file, f.ws.path('server/in/big.bin')), 'delivery after the restart', 30_000);
    second.child.kill('SIGTERM');
    expect((await second.done).code).toBe(0);
  });
});
