/**
 * vitest globalSetup: gives the run a folder where the first test file that needs Ceph starts the
 * one shared cluster (`sharedCeph()` in ceph.ts), and stops that cluster when the run ends. A run
 * without S3 tests starts nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SHARED_CEPH_ENV, stopSharedCeph } from './ceph.js';

export default function setup(): () => Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-ceph-shared-'));
  process.env[SHARED_CEPH_ENV] = dir;
  return () => stopSharedCeph(dir);
}
