/**
 * Append mode's pieces on a real file system: deltas in the spool, and the decision what to send
 * given what the "server" (a local-transport folder) holds.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EMPTY_BASE, Spool, TAIL_WINDOW_BYTES, type AppendBase, type Snapshot } from '../../src/spool/spool.js';
import { appendSnapshot, planAppend } from '../../src/subtask/appendUpload.js';
import { LocalTransport } from '../../src/transports/local.js';

let tmp: string;
let spool: Spool;
let source: string;
let remoteDir: string;

beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'pushtask-append-test-'));
  spool = new Spool(path.join(tmp, 'spool'));
  await spool.ensureDir();
  source = path.join(tmp, 'data.csv');
  remoteDir = path.join(tmp, 'remote');
  await fs.mkdir(remoteDir);
});

afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

const hash = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** The base the ledger would hold after delivering `content`. */
function baseOf(content: Buffer): AppendBase {
  return { offset: content.length, tailHash: hash(content.subarray(Math.max(0, content.length - TAIL_WINDOW_BYTES))) };
}

async function snap(base: AppendBase): Promise<Snapshot | null> {
  return spool.snapshot({ kind: 'data', source, remotePath: 'data.csv', append: base });
}

describe('planAppend', () => {
  it('appends from the remote size, and checks the remote end unless it is exactly where this connection left it', () => {
    expect(planAppend(100, 150, 100, true)).toEqual({ kind: 'append', from: 100, verify: false });
    expect(planAppend(100, 150, 100, false)).toEqual({ kind: 'append', from: 100, verify: true });
    expect(planAppend(100, 150, 120, true)).toEqual({ kind: 'append', from: 120, verify: true });
    expect(planAppend(100, 150, 150, true)).toEqual({ kind: 'append', from: 150, verify: true });
  });

  it('asks for the whole file when the remote one is missing, shorter than delivered, or longer than ours', () => {
    expect(planAppend(0, 50, null, false)).toMatchObject({ kind: 'needs-whole', reason: expect.stringMatching(/not on the server yet/) });
    expect(planAppend(100, 150, null, true)).toMatchObject({ kind: 'needs-whole', reason: expect.stringMatching(/missing.*first 100 bytes/) });
    expect(planAppend(100, 150, 99, true)).toMatchObject({ kind: 'needs-whole', reason: expect.stringMatching(/99 bytes.*fewer than the 100/) });
    expect(planAppend(100, 150, 151, true)).toMatchObject({ kind: 'needs-whole', reason: expect.stringMatching(/151 bytes.*more than the 150/) });
  });
});

describe('append-mode snapshots', () => {
  it('takes only the bytes after the delivered offset, and hands on the hash of the new tail', async () => {
    const first = randomBytes(10_000);
    await fs.writeFile(source, first);
    const whole = (await snap(EMPTY_BASE))!;
    expect(whole).toMatchObject({ appendFrom: 0, size: 10_000, tailHash: baseOf(first).tailHash });
    expect(await fs.readFile(whole.dataPath)).toEqual(first);

    const added = randomBytes(1000); // smaller than the window: the new tail spans old and new bytes
    await fs.appendFile(source, added);
    const delta = (await snap(baseOf(first)))!;
    expect(delta).toMatchObject({ appendFrom: 10_000, size: 11_000, baseHash: baseOf(first).tailHash });
    expect(await fs.readFile(delta.dataPath)).toEqual(added);
    expect(delta.tailHash).toBe(baseOf(Buffer.concat([first, added])).tailHash);
  });

  it('computes the tail right for tiny files and for deltas larger than the window', async () => {
    const tiny = Buffer.from('a,b\n');
    await fs.writeFile(source, tiny);
    const bigger = Buffer.concat([tiny, randomBytes(3 * TAIL_WINDOW_BYTES)]);
    await fs.writeFile(source, bigger);
    const delta = (await snap(baseOf(tiny)))!;
    expect(delta.appendFrom).toBe(tiny.length);
    expect(delta.tailHash).toBe(baseOf(bigger).tailHash);
  });

  it('returns nothing when the file did not grow, and the whole file when it shrank or was rewritten', async () => {
    const content = randomBytes(6000);
    await fs.writeFile(source, content);
    expect(await snap(baseOf(content))).toBeNull();

    await fs.writeFile(source, content.subarray(0, 5000)); // shrank
    const shrunk = (await snap(baseOf(content)))!;
    expect(shrunk.appendFrom).toBeUndefined();
    expect(shrunk.size).toBe(5000);
    expect(shrunk.tailHash).toBe(baseOf(content.subarray(0, 5000)).tailHash);

    const rotated = Buffer.concat([randomBytes(6000), randomBytes(100)]); // longer, but other bytes
    await fs.writeFile(source, rotated);
    const whole = (await snap(baseOf(content)))!;
    expect(whole.appendFrom).toBeUndefined();
    expect(await fs.readFile(whole.dataPath)).toEqual(rotated);
  });

  it('keeps append fields across a restart (spool recovery)', async () => {
    const content = randomBytes(5000);
    await fs.writeFile(source, content);
    await fs.appendFile(source, 'more\n');
    const delta = (await snap(baseOf(content)))!;
    const [recovered] = await new Spool(spool.dir).recover();
    expect(recovered).toMatchObject({ appendFrom: 5000, baseHash: delta.baseHash, tailHash: delta.tailHash, size: 5005 });
  });
});

describe('appendSnapshot against a local destination', () => {
  const transport = () => new LocalTransport({ type: 'local', dir: remoteDir });
  const remote = () => path.join(remoteDir, 'data.csv');
  const send = (snapshot: Snapshot, trusted = new Set<string>()) =>
    appendSnapshot(snapshot, { appender: transport().append, trusted, signal: new AbortController().signal });

  async function deltaAfter(delivered: Buffer, added: Buffer): Promise<Snapshot> {
    await fs.writeFile(source, Buffer.concat([delivered, added]));
    return (await snap(baseOf(delivered)))!;
  }

  it('appends the new bytes where the remote file ends', async () => {
    const delivered = randomBytes(8000);
    await fs.writeFile(remote(), delivered);
    const added = randomBytes(3000);
    const outcome = await send(await deltaAfter(delivered, added));
    expect(outcome).toEqual({ kind: 'appended', bytes: 3000, remoteSizeBefore: 8000 });
    expect(await fs.readFile(remote())).toEqual(Buffer.concat([delivered, added]));
  });

  it('continues an interrupted append from what the server holds: nothing lost, nothing doubled', async () => {
    const delivered = randomBytes(8000);
    const added = randomBytes(3000);
    await fs.writeFile(remote(), Buffer.concat([delivered, added.subarray(0, 1234)])); // cut mid-append
    const outcome = await send(await deltaAfter(delivered, added));
    expect(outcome).toMatchObject({ kind: 'appended', bytes: 3000 - 1234 });
    expect(await fs.readFile(remote())).toEqual(Buffer.concat([delivered, added]));

    // Everything arrived but the confirmation was lost: nothing is sent again.
    expect(await send(await deltaAfter(delivered, added))).toMatchObject({ kind: 'appended', bytes: 0 });
    expect(await fs.readFile(remote())).toEqual(Buffer.concat([delivered, added]));
  });

  it('resumes a remote file from an earlier run when its end matches (delta from 0, no ledger)', async () => {
    const content = randomBytes(20_000);
    await fs.writeFile(remote(), content.subarray(0, 12_345));
    await fs.writeFile(source, content);
    const outcome = await send((await snap(EMPTY_BASE))!);
    expect(outcome).toMatchObject({ kind: 'appended', bytes: 20_000 - 12_345 });
    expect(await fs.readFile(remote())).toEqual(content);
  });

  it('refuses to continue a remote file that is longer, shorter than delivered, missing, or ends differently', async () => {
    const delivered = randomBytes(8000);
    const added = randomBytes(100);
    const delta = await deltaAfter(delivered, added);

    await fs.writeFile(remote(), Buffer.concat([delivered, added, Buffer.from('x')]));
    expect(await send(delta)).toMatchObject({ kind: 'needs-whole', reason: expect.stringMatching(/more than/) });
    await fs.writeFile(remote(), delivered.subarray(0, 7000));
    expect(await send(delta)).toMatchObject({ kind: 'needs-whole', reason: expect.stringMatching(/fewer than/) });
    await fs.rm(remote());
    expect(await send(delta)).toMatchObject({ kind: 'needs-whole', reason: expect.stringMatching(/missing/) });

    const tampered = Buffer.from(delivered);
    tampered[7990] = tampered[7990]! ^ 0xff; // inside the tail window, before the delta
    await fs.writeFile(remote(), tampered);
    expect(await send(delta)).toMatchObject({ kind: 'needs-whole', reason: expect.stringMatching(/differ/) });
    // Trusted (this connection appended it last) and exactly where we left it: not read again.
    expect(await send(delta, new Set(['data.csv']))).toMatchObject({ kind: 'appended', bytes: 100 });

    const partlyWrong = Buffer.concat([delivered, Buffer.from(added.subarray(0, 50)).fill(0)]);
    await fs.writeFile(remote(), partlyWrong);
    expect(await send(delta)).toMatchObject({ kind: 'needs-whole', reason: expect.stringMatching(/differ/) });
  });

  it('never sends a damaged delta (shorter than its meta says, e.g. a short write on a full disk)', async () => {
    const delivered = randomBytes(8000);
    await fs.writeFile(remote(), delivered);
    const delta = await deltaAfter(delivered, randomBytes(3000));
    await fs.truncate(delta.dataPath, 1000);
    expect(await send(delta)).toMatchObject({ kind: 'bad-snapshot', reason: expect.stringMatching(/holds 1000 bytes, not the 3000/) });
    expect(await fs.readFile(remote())).toEqual(delivered);
  });
});
