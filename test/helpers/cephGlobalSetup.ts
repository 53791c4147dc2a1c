/**
 * vitest globalSetup: gives the run a folder where the first test file that needs Ceph starts the
 * one shared cluster (`sharedCeph()` in ceph.ts), and stops that cluster when the run ends. A run
 * without S3 tests starts nothing. Clusters of earlier runs that were killed before their teardown
 * (their owner pid is gone) are stopped first, so they do not pile up in RAM.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SHARED_CEPH_ENV, stopSharedCeph } from './ceph.js';

const PREFIX = 'pushtask-ceph-shared-';

export default async function setup(): Promise<() => Promise<void>> {
  for (const name of fs.readdirSync(os.tmpdir()).filter((entry) => entry.startsWith(PREFIX))) {
    const dir = path.join(os.tmpdir(), name);
    let owner = 0;
    try {
      owner = Number(fs.readFileSync(path.join(dir, 'owner.pid'), 'utf8').trim());
    } catch {
      continue; // another run's folder being set up, or not ours
    }
    if (owner > 0 && !alive(owner)) await stopSharedCeph(dir);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), PREFIX));
  fs.writeFileSync(path.join(dir, 'owner.pid'), String(process.pid));
  process.env[SHARED_CEPH_ENV] = dir;
  return () => stopSharedCeph(dir);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
