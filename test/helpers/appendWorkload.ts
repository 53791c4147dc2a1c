/**
 * A data logger for append-mode tests: appends random lines to a few files with a notify after
 * each, while a fault hook strikes at random steps (seeded, so a failing run can be replayed with
 * PUSHTASK_SEED=<seed>). Afterwards every remote file must equal its local file byte for byte.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { TaskMaster } from '../../src/index.js';
import { sameBytes, waitFor } from './workspace.js';

/** mulberry32: small, fast, good enough to pick faults. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of this run: PUSHTASK_SEED when set (replay), otherwise a new one; printed either way. */
export function testSeed(label: string): number {
  const seed = process.env.PUSHTASK_SEED ? Number(process.env.PUSHTASK_SEED) : Math.floor(Math.random() * 2 ** 31);
  console.log(`${label}: seed ${seed} (replay with PUSHTASK_SEED=${seed})`);
  return seed;
}

export interface AppendWorkloadOptions {
  master: () => TaskMaster;
  /** Watched append-mode files (absolute paths). */
  files: string[];
  steps: number;
  random: () => number;
  /** Called before step `step`; may break things (cut links, kill the subtask, restart servers). */
  fault?: (step: number) => Promise<void> | void;
  /** Truncate and rewrite this file at the middle step (a log rotation). */
  rotate?: string;
  /** Pause between steps, ms. */
  pauseMs?: number;
}

export interface AppendWorkloadResult {
  appendedBytes: number;
  notifies: number;
}

export async function runAppendWorkload(options: AppendWorkloadOptions): Promise<AppendWorkloadResult> {
  const { files, random } = options;
  let appendedBytes = 0;
  let notifies = 0;
  for (let step = 0; step < options.steps; step += 1) {
    await options.fault?.(step);
    const file = files[Math.floor(random() * files.length)]!;
    if (options.rotate === file && step === Math.floor(options.steps / 2)) {
      fs.writeFileSync(file, `rotated at step ${step}\n`);
    } else {
      const line = `${step},${Date.now()},${'x'.repeat(Math.floor(random() * 300))}\n`;
      fs.appendFileSync(file, line);
      appendedBytes += line.length;
    }
    try {
      options.master().notify(file);
      notifies += 1;
    } catch {
      // The master is being restarted by the fault hook: the next start's catch-up covers it.
    }
    await new Promise((resolve) => setTimeout(resolve, options.pauseMs ?? 2));
  }
  return { appendedBytes, notifies };
}

/** Waits until every local file has a byte-identical remote twin (`remoteOf` maps the paths). */
export async function waitForIdentical(files: string[], remoteOf: (file: string) => string, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    () => files.every((file) => sameBytes(file, remoteOf(file))),
    `${files.map((file) => path.basename(file)).join(', ')} to be byte-identical remotely`,
    timeoutMs,
  );
}
