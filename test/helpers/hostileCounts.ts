/**
 * Counts of the hostile inputs and security checks tried, for docs/RELIABILITY.md: each test adds
 * its own under a stable key in test/results/hostile-counts.json (git-ignored). Test files run in
 * parallel workers, so the read-modify-write is done under a lock.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import lockfile from 'proper-lockfile';
import writeFileAtomic from 'write-file-atomic';

export const COUNTS_FILE = fileURLToPath(new URL('../results/hostile-counts.json', import.meta.url));

/** Records `count` under `key` (replacing the previous run's). Never fails a test. */
export async function recordCount(key: string, count: number): Promise<void> {
  try {
    fs.mkdirSync(path.dirname(COUNTS_FILE), { recursive: true });
    const release = await lockfile.lock(path.dirname(COUNTS_FILE), {
      lockfilePath: `${COUNTS_FILE}.lock`,
      realpath: false,
      retries: { retries: 50, minTimeout: 10, maxTimeout: 100 },
    });
    try {
      let counts: Record<string, unknown> = {};
      try {
        counts = JSON.parse(fs.readFileSync(COUNTS_FILE, 'utf8')) as Record<string, unknown>;
      } catch {
        // first run, or a file cut short: start again
      }
      counts[key] = { count, at: new Date().toISOString() };
      const sorted = Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
      await writeFileAtomic(COUNTS_FILE, `${JSON.stringify(sorted, null, 2)}\n`);
    } finally {
      await release();
    }
  } catch (error) {
    process.stderr.write(`hostile-counts: could not record ${key}: ${String(error)}\n`);
  }
}
