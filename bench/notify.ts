/**
 * Cost of one `notify()` in the host, next to the floor it cannot beat (a bare `fs.utimesSync`),
 * and the longest event-loop stall in the host while a notify stream runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fmt, formatSummary, goalRow, sleep, startMaster, summarize, type Bench, type Row, type Summary } from './lib.js';

const BATCH = 50;

/** Times `calls` calls of `fn` one by one, in batches with a 1 ms pause between (the subtask works meanwhile). */
async function timeCalls(calls: number, fn: () => void): Promise<Summary> {
  const micros = new Float64Array(calls);
  for (let done = 0; done < calls; ) {
    for (const end = Math.min(calls, done + BATCH); done < end; done += 1) {
      const t0 = process.hrtime.bigint();
      fn();
      micros[done] = Number(process.hrtime.bigint() - t0) / 1000;
    }
    await sleep(1);
  }
  return summarize(Array.from(micros));
}

/** Runs `fn` once per millisecond tick for `ms` and returns the event-loop delay histogram in ms. */
async function loopDelay(ms: number, fn: () => void): Promise<{ max: number; p99: number; median: number }> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const end = Date.now() + ms;
  while (Date.now() < end) {
    fn();
    await sleep(1);
  }
  histogram.disable();
  return { max: histogram.max / 1e6, p99: histogram.percentile(99) / 1e6, median: histogram.percentile(50) / 1e6 };
}

export const notifyBench: Bench = async ({ quick }) => {
  const calls = quick ? 5_000 : 20_000;
  const streamMs = quick ? 2_000 : 10_000;
  const { master, dir, files, close } = await startMaster({ name: 'notify' });
  const file = files[0]!;
  // Two floors: a file outside the watched folder (wakes nobody), and one inside it (the subtask's
  // watch sees it and ignores it: the kernel's inotify work and the woken subtask are part of the cost).
  const touch = (file: string) => {
    fs.writeFileSync(file, '');
    return () => {
      const seconds = Date.now() / 1000;
      fs.utimesSync(file, seconds, seconds);
    };
  };
  fs.mkdirSync(path.join(dir, 'scratch'));
  const utimes = touch(path.join(dir, 'scratch', 'floor.tmp'));
  const utimesWatched = touch(path.join(path.dirname(file), 'floor.tmp'));
  const notify = () => master.notify(file);
  try {
    let uploads = 0;
    master.on('uploaded', () => (uploads += 1));
    console.log(`  ${calls} calls each, batches of ${BATCH} with 1 ms pauses; plain file (no burst mode): every notify touches the sidecar`);
    await timeCalls(calls / 4, utimes); // warm-up: JIT, file-system caches
    await timeCalls(calls / 4, notify);
    const timer = await timeCalls(calls, () => undefined);
    const floor = await timeCalls(calls, utimes);
    const floorWatched = await timeCalls(calls, utimesWatched);
    uploads = 0;
    const cost = await timeCalls(calls, notify);
    const keys = ['median', 'p90', 'p99', 'max'] as const;
    console.log(`  hrtime overhead                  ${formatSummary(timer, 'µs', keys)}`);
    console.log(`  utimesSync, unwatched folder     ${formatSummary(floor, 'µs', keys)}`);
    console.log(`  utimesSync, watched folder       ${formatSummary(floorWatched, 'µs', keys)}`);
    console.log(`  notify()                         ${formatSummary(cost, 'µs', keys)}   goal p99 < 50 µs`);
    console.log(`  (the subtask delivered ${uploads} uploads during those ${calls} notifies)`);

    console.log(`  event-loop delay (monitorEventLoopDelay, resolution 1 ms), one call per 1 ms tick for ${streamMs / 1000} s:`);
    const idle = await loopDelay(streamMs, () => undefined);
    uploads = 0;
    const stream = await loopDelay(streamMs, notify);
    console.log(`  no-op loop     median ${fmt(idle.median)}  p99 ${fmt(idle.p99)}  max ${fmt(idle.max)} ms`);
    console.log(`  notify stream  median ${fmt(stream.median)}  p99 ${fmt(stream.p99)}  max ${fmt(stream.max)} ms  (${uploads} uploads meanwhile)`);

    // The same calls against a subtask that only polls (fsEvents: false): nobody wakes on each touch.
    const polling = await startMaster({ name: 'notify-poll', config: { fsEvents: false } });
    let quiet: Summary;
    try {
      const pollNotify = () => polling.master.notify(polling.files[0]!);
      await timeCalls(calls / 4, pollNotify);
      quiet = await timeCalls(calls, pollNotify);
    } finally {
      await polling.close();
    }
    console.log(`  notify(), fsEvents: false        ${formatSummary(quiet, 'µs', keys)}   (subtask polls only: no wake-up per touch)`);

    const rows: Row[] = [
      { bench: 'notify', metric: 'notify() median', value: cost.median, unit: 'µs' },
      goalRow('notify', 'notify() p99', cost.p99, 'µs', 50),
      { bench: 'notify', metric: 'notify() max', value: cost.max, unit: 'µs' },
      { bench: 'notify', metric: 'notify() p99, fsEvents: false', value: quiet.p99, unit: 'µs' },
      { bench: 'notify', metric: 'utimesSync floor median', value: floor.median, unit: 'µs' },
      { bench: 'notify', metric: 'utimesSync floor p99', value: floor.p99, unit: 'µs' },
      { bench: 'notify', metric: 'utimesSync in watched dir p99', value: floorWatched.p99, unit: 'µs' },
      { bench: 'notify', metric: 'loop delay max (notify stream)', value: stream.max, unit: 'ms' },
      { bench: 'notify', metric: 'loop delay p99 (notify stream)', value: stream.p99, unit: 'ms' },
      { bench: 'notify', metric: 'loop delay max (no-op loop)', value: idle.max, unit: 'ms' },
    ];
    return rows;
  } finally {
    await close();
  }
};
