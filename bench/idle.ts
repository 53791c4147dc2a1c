/**
 * The idle subtask: CPU time (utime+stime from /proc/<pid>/stat) and RSS (VmRSS) over an idle
 * window, with 1 and with 1,000 watched files, next to a bare idle node process measured over
 * the same window. Measured on compiled dist/ (what an installed package runs; the goals apply
 * to it) and on src/ through the tsx loader (development; the loader itself costs memory).
 * The 1,000 files are all uploaded at the first start, so that case is also measured after a
 * reset (restart with nothing to deliver): steady state versus what the start-up left behind.
 */
import { spawn } from 'node:child_process';
import { clkTck, fmt, goalRow, measureWindow, sleep, startMaster, type Bench, type Row, type Runtime } from './lib.js';

interface Case {
  runtime: Runtime;
  files: number;
  /** Measure after `master.reset()` instead of after the first start. */
  afterReset: boolean;
}

const cases: Case[] = [
  { runtime: 'dist', files: 1, afterReset: false },
  { runtime: 'dist', files: 1000, afterReset: false },
  { runtime: 'dist', files: 1000, afterReset: true },
  { runtime: 'src', files: 1, afterReset: false },
  { runtime: 'src', files: 1000, afterReset: false },
];

export const idleBench: Bench = async ({ quick }) => {
  const windowMs = quick ? 5_000 : 30_000;
  // V8's memory reducer runs two full GCs about 8–9 s after start (≈ 60 ms of CPU): settle past them.
  const settleMs = quick ? 2_000 : 12_000;
  console.log(`  ${windowMs / 1000} s idle window after ${settleMs / 1000} s settling; intervalMs 2000 (default), fsEvents on; CLK_TCK ${clkTck()}`);
  const baseline = spawn(process.execPath, ['-e', 'setInterval(()=>{},1000)'], { stdio: 'ignore' });
  const rows: Row[] = [];
  const baselineCpu: number[] = [];
  const baselinePrecise: number[] = [];
  const baselineRss: number[] = [];
  try {
    for (const { runtime, files, afterReset } of cases) {
      const { master, close } = await startMaster({ name: `idle-${runtime}-${files}`, files, runtime });
      try {
        if (afterReset) await master.reset();
        await sleep(settleMs);
        const pid = master.subtaskPid;
        if (pid === undefined) throw new Error('the subtask is not running');
        const [subtask, bare] = await measureWindow([pid, baseline.pid!], windowMs);
        baselineCpu.push(bare!.cpuPercent);
        baselinePrecise.push(bare!.preciseCpuPercent);
        baselineRss.push(bare!.rssMb);
        const label = `${runtime} ${String(files).padStart(4)} file(s)${afterReset ? ', after reset' : ''}`.padEnd(29);
        console.log(
          `  ${label} subtask ${fmt(subtask!.cpuPercent, 3)} % CPU (${fmt(subtask!.cpuSec, 2)} s; schedstat ${fmt(subtask!.preciseCpuPercent, 3)} %), RSS ${fmt(subtask!.rssMb, 1)} MB (anon ${fmt(subtask!.anonMb, 1)})` +
            `   | bare node ${fmt(bare!.cpuPercent, 3)} % (schedstat ${fmt(bare!.preciseCpuPercent, 3)} %), RSS ${fmt(bare!.rssMb, 1)} MB (anon ${fmt(bare!.anonMb, 1)})`,
        );
        const bench = `idle/${runtime}/${files}${afterReset ? '/reset' : ''}`;
        if (runtime === 'dist') {
          rows.push(
            goalRow(bench, 'subtask CPU', subtask!.cpuPercent, '% core', files === 1 ? 0.1 : 1),
            { bench, metric: 'subtask CPU (schedstat)', value: subtask!.preciseCpuPercent, unit: '% core' },
            goalRow(bench, 'subtask RSS', subtask!.rssMb, 'MB', 64),
          );
        } else {
          rows.push({ bench, metric: 'subtask CPU', value: subtask!.cpuPercent, unit: '% core' }, { bench, metric: 'subtask RSS', value: subtask!.rssMb, unit: 'MB' });
        }
      } finally {
        await close();
      }
    }
  } finally {
    baseline.kill();
  }
  const mean = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / values.length;
  rows.push(
    { bench: 'idle/bare-node', metric: 'CPU (mean of windows)', value: mean(baselineCpu), unit: '% core' },
    { bench: 'idle/bare-node', metric: 'CPU (schedstat, mean)', value: mean(baselinePrecise), unit: '% core' },
    { bench: 'idle/bare-node', metric: 'RSS (max)', value: Math.max(...baselineRss), unit: 'MB' },
  );
  const tickPercent = 100 / ((clkTck() * windowMs) / 1000);
  console.log(`  (resolution: one clock tick = ${fmt(tickPercent, 3)} % over this window; pysubtask idles at 0.03 % and 21 MB)`);
  return rows;
};
