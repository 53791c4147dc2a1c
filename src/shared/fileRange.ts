/** Byte ranges of files: what append mode reads, copies and compares. */
import { createHash } from 'node:crypto';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import { PushtaskError } from './errors.js';

const CHUNK_BYTES = 1024 * 1024;

/**
 * The file from `start` when that is at most `maxBytes`, else null. Synchronous: for spool
 * snapshots just written (in the page cache), where four thread-pool round trips cost more of the
 * event loop than the reads themselves.
 */
export function readSmallFile(file: string, maxBytes: number, start = 0): Buffer | null {
  const fd = fsSync.openSync(file, 'r');
  try {
    const size = Math.max(0, fsSync.fstatSync(fd).size - start);
    if (size > maxBytes) return null;
    const data = Buffer.allocUnsafe(size);
    for (let done = 0; done < size; ) {
      const read = fsSync.readSync(fd, data, done, size - done, start + done);
      if (read === 0) return data.subarray(0, done); // shrank meanwhile: not for a spool snapshot
      done += read;
    }
    return data;
  } finally {
    fsSync.closeSync(fd);
  }
}

/** `length` bytes from `start` (fewer when the file ends first). */
export async function readRange(file: string, start: number, length: number): Promise<Buffer> {
  const handle = await fs.open(file, 'r');
  try {
    const buffer = Buffer.alloc(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await handle.read(buffer, filled, length - filled, start + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buffer.subarray(0, filled);
  } finally {
    await handle.close();
  }
}

/**
 * Calls `consume` with consecutive chunks of `file` from `start` to its end (as it was when
 * opened: bytes appended meanwhile may or may not be included, so callers pass files that no
 * longer change, such as spool snapshots).
 */
export async function forEachChunk(file: string, start: number, consume: (chunk: Buffer, offset: number) => Promise<void>): Promise<void> {
  const handle = await fs.open(file, 'r');
  try {
    const { size } = await handle.stat();
    for (let offset = start; offset < size; ) {
      const length = Math.min(CHUNK_BYTES, size - offset);
      const chunk = Buffer.alloc(length);
      const { bytesRead } = await handle.read(chunk, 0, length, offset);
      if (bytesRead === 0) break;
      await consume(chunk.subarray(0, bytesRead), offset);
      offset += bytesRead;
    }
  } finally {
    await handle.close();
  }
}

/**
 * Copies bytes [start, end) of `source` into a new file `target` (owner-only) and fsyncs it.
 * Returns how many bytes were copied: fewer than asked when the source shrank meanwhile.
 */
export async function copyRange(source: string, start: number, end: number, target: string): Promise<number> {
  const input = await fs.open(source, 'r');
  try {
    const output = await fs.open(target, 'wx', 0o600);
    try {
      const buffer = Buffer.alloc(Math.min(CHUNK_BYTES, Math.max(end - start, 1)));
      let copied = 0;
      while (start + copied < end) {
        const { bytesRead } = await input.read(buffer, 0, Math.min(buffer.length, end - start - copied), start + copied);
        if (bytesRead === 0) break;
        // A write may be short (a disk filling up): write the rest, or fail with the disk's error.
        for (let written = 0; written < bytesRead; ) {
          const { bytesWritten } = await output.write(buffer, written, bytesRead - written, copied + written);
          if (bytesWritten === 0) throw Object.assign(new Error(`ENOSPC: no space left on device, write ${target}`), { code: 'ENOSPC' });
          written += bytesWritten;
        }
        copied += bytesRead;
      }
      await output.sync();
      // What is on disk is what counts.
      const { size } = await output.stat();
      if (size !== copied) throw new Error(`copied ${copied} bytes into ${target}, but it holds ${size}`);
      return copied;
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Exactly `length` bytes at `position` of an open snapshot; one that shrank underneath us is an error. */
export async function readAt(handle: fs.FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) throw new PushtaskError('UPLOAD_FAILED', `The snapshot ended at byte ${position + filled} while ${position + length} were expected`);
    filled += bytesRead;
  }
  return buffer;
}
