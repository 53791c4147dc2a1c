import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests fork real subtask processes; two cores, so keep parallelism modest.
    maxWorkers: 2,
    // The Ceph cluster of the s3 tests: started by the first file that needs it, stopped here.
    globalSetup: ['test/helpers/cephGlobalSetup.ts'],
  },
});
