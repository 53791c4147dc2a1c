/**
 * A full spool disk at every point of a snapshot: the snapshot either exists whole (bytes + meta)
 * or nothing of it does. Debris would sit in the spool unseen by the uploader until a restart (the
 * chaos suite found a .snap left behind by a meta rewrite that hit ENOSPC after the copy).
 * Needs a small tmpfs, so root; skipped with the reason otherwise.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMPTY_BASE, Spool } from '../../src/spool/spool.js';

const DISK_BYTES = 64 * 1024;
const PAGE = 4096;

let tmp: string;
let mountPoint: string;
let skipReason: string | null = null;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-diskfull-'));
  mountPoint = path.join(tmp, 'disk');
  fs.mkdirSync(mountPoint);
  if (process.getuid?.() !== 0) {
    skipReason = 'not root: cannot mount a tmpfs to fill';
  } else {
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${DISK_BYTES}`, 'tmpfs', mountPoint], { stdio: 'pipe' });
    } catch (error) {
      skipReason = `mount -t tmpfs failed: ${(error as Error).message.split('\n')[0]}`;
    }
  }
  if (skipReason) console.log(`spool disk-full test skipped: ${skipReason}`);
});

afterAll(() => {
  if (!skipReason) execFileSync('umount', [mountPoint]);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const cases = [
  { name: 'whole file', append: undefined },
  { name: 'append mode, first delta', append: EMPTY_BASE },
  { name: 'append mode, rewritten file (whole with tail hash)', append: { offset: 100, tailHash: 'not the hash' } },
];

describe('spool on a full disk', () => {
  for (const { name, append } of cases) {
    it(`${name}: a snapshot is complete or absent, at every fill level`, async (context) => {
      if (skipReason) return context.skip();
      const source = path.join(tmp, 'source.bin');
      fs.writeFileSync(source, Buffer.alloc(3 * PAGE + 123, 7));
      const spoolDir = path.join(mountPoint, 'spool');
      let failures = 0;
      let successes = 0;
      for (let fill = 0; fill <= DISK_BYTES; fill += PAGE / 2) {
        fs.rmSync(spoolDir, { recursive: true, force: true });
        fs.rmSync(path.join(mountPoint, 'filler'), { force: true });
        const spool = new Spool(spoolDir);
        await spool.ensureDir();
        try {
          fs.writeFileSync(path.join(mountPoint, 'filler'), Buffer.alloc(fill));
        } catch {
          // The disk holds less than `fill`: it is as full as it gets.
        }
        let snapshot;
        try {
          snapshot = await spool.snapshot({ kind: 'data', source, remotePath: 'source.bin', ...(append && { append }) });
        } catch (error) {
          expect((error as Error).message).toMatch(/ENOSPC/);
          failures += 1;
          expect(fs.readdirSync(spoolDir), `fill ${fill}`).toEqual([]);
          continue;
        }
        successes += 1;
        expect(snapshot).toBeTruthy();
        expect(fs.readdirSync(spoolDir).sort()).toEqual([path.basename(snapshot!.dataPath), path.basename(snapshot!.metaPath)].sort());
        expect(fs.statSync(snapshot!.dataPath).size).toBe(snapshot!.size - (snapshot!.appendFrom ?? 0));
        // What recover() reads back is what snapshot() returned.
        const [recovered] = await new Spool(spoolDir).recover();
        expect(recovered?.size).toBe(snapshot!.size);
        expect(recovered?.tailHash).toBe(snapshot!.tailHash);
      }
      // The sweep did hit both outcomes.
      expect(failures).toBeGreaterThan(2);
      expect(successes).toBeGreaterThan(2);
    });
  }
});
