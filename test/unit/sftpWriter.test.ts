import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SFTPWrapper } from 'ssh2';
import { afterEach, describe, expect, it } from 'vitest';
import { InOrderServers, isOutOfOrderRefusal, writeInOrder } from '../../src/transports/sftpWriter.js';

/**
 * A fake SFTP session like rclone's: it takes a write only at the offset where the file ends
 * ("Illegal seek" otherwise) and answers writes in a scrambled order, as a server with several
 * workers does; it records how many writes were outstanding at most.
 */
function streamingServer(maxWriteLen: number) {
  const file: Buffer[] = [];
  let size = 0;
  let outstanding = 0;
  let maxOutstanding = 0;
  const offsets: number[] = [];
  const answers: (() => void)[] = [];
  const flush = () => {
    // Answer the newest first: replies in the worst order a server may send them.
    while (answers.length) answers.pop()!();
  };
  const sftp = {
    _maxWriteLen: maxWriteLen,
    write(_handle: Buffer, data: Buffer, offset: number, length: number, position: number, done: (error?: Error) => void) {
      outstanding += 1;
      maxOutstanding = Math.max(maxOutstanding, outstanding);
      offsets.push(position);
      // Processed in arrival order (as sent), answered later and out of order.
      const error = position === size ? null : new Error('Illegal seek');
      if (!error) {
        file.push(Buffer.from(data.subarray(offset, offset + length)));
        size += length;
      }
      answers.push(() => {
        outstanding -= 1;
        done(error ?? undefined);
      });
      setImmediate(flush);
    },
  } as unknown as SFTPWrapper;
  return { sftp, content: () => Buffer.concat(file), offsets, maxOutstanding: () => maxOutstanding };
}

let dir: string | null = null;
afterEach(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  dir = null;
});

function localFile(bytes: Buffer): string {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-sftpwriter-'));
  const file = path.join(dir, 'data.bin');
  fs.writeFileSync(file, bytes);
  return file;
}

describe('writeInOrder', () => {
  it('sends every write in order with up to N in flight, so a streaming server gets the whole file', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 12_345);
    const server = streamingServer(32 * 1024);
    const progress: number[] = [];
    const sent = await writeInOrder(server.sftp, Buffer.from('h'), {
      localPath: localFile(data),
      inFlight: 16,
      signal: new AbortController().signal,
      onProgress: (bytes) => progress.push(bytes),
    });
    expect(sent).toBe(data.length);
    expect(server.content().equals(data)).toBe(true);
    expect(server.offsets).toEqual([...server.offsets].sort((a, b) => a - b));
    expect(server.maxOutstanding()).toBe(16);
    expect(progress.at(-1)).toBe(data.length);
  });

  it('continues a file: bytes from localStart go to remoteOffset', async () => {
    const data = randomBytes(100_000);
    const server = streamingServer(8 * 1024);
    // The fake file already holds 0 bytes; write local [40000, end) at remote offset 0.
    await writeInOrder(server.sftp, Buffer.from('h'), { localPath: localFile(data), localStart: 40_000, remoteOffset: 0, inFlight: 4, signal: new AbortController().signal });
    expect(server.content().equals(data.subarray(40_000))).toBe(true);
  });

  it('fails with the server error of the first refused write', async () => {
    const data = randomBytes(200_000);
    const server = streamingServer(8 * 1024);
    await expect(
      writeInOrder(server.sftp, Buffer.from('h'), { localPath: localFile(data), remoteOffset: 5, inFlight: 4, signal: new AbortController().signal }),
    ).rejects.toThrow('Illegal seek');
  });

  it('stops when its signal aborts', async () => {
    const server = streamingServer(8 * 1024);
    const controller = new AbortController();
    controller.abort(new Error('stopping'));
    await expect(
      writeInOrder(server.sftp, Buffer.from('h'), { localPath: localFile(randomBytes(100_000)), inFlight: 4, signal: controller.signal }),
    ).rejects.toThrow('stopping');
  });
});

describe('out-of-order refusals', () => {
  it('recognises what rclone and similar servers answer, and nothing else', () => {
    expect(isOutOfOrderRefusal(new Error('fastPut: Illegal seek Local: /a Remote: /b'))).toBe(true);
    expect(isOutOfOrderRefusal(new Error("WriteFileHandle.Write: can't seek in file"))).toBe(true);
    expect(isOutOfOrderRefusal(new Error('Permission denied'))).toBe(false);
    expect(isOutOfOrderRefusal(new Error('No such file'))).toBe(false);
  });

  it('learns each server once', () => {
    const servers = new InOrderServers();
    expect(servers.has('h:22')).toBe(false);
    expect(servers.learn('h:22')).toBe(true);
    expect(servers.learn('h:22')).toBe(false);
    expect(servers.has('h:22')).toBe(true);
    expect(servers.has('h:2222')).toBe(false);
  });
});
