import { defineConfig } from 'vitest/config';

/** `npm run test:chaos`: the fault-injection suite, one transport after another (it is CPU-heavy). */
export default defineConfig({
  test: {
    include: ['test/chaos/**/*.chaos.ts'],
    testTimeout: 240_000,
    hookTimeout: 60_000,
    maxWorkers: 1,
    fileParallelism: false,
    // The Ceph cluster of the s3 target: started when the suite first needs it, stopped here.
    globalSetup: ['test/helpers/cephGlobalSetup.ts'],
  },
});
