/**
 * notify → delivered latency: append a line, notify, time until the `uploaded` event for that file
 * carries the new size. Sequential samples on the local transport with the file-system watch and
 * with polling alone, and over SFTP to OpenSSH's sshd on loopback (small writes that wait for
 * answers: Nagle's algorithm on the SSH socket cost ~40 ms each, issue 16).
 */
import fs from 'node:fs';
import type { PushtaskConfig } from '../src/index.js';
import { startSshd, sshdUnavailable } from '../test/helpers/sshd.js';
import { formatSummary, goalRow, nextUpload, sleep, startMaster, summarize, type Bench, type Row, type Summary } from './lib.js';

interface Mode {
  label: string;
  fsEvents: boolean;
  intervalMs: number;
  samples: number;
  /** Pause before each sample, ms. */
  gapMs: () => number;
  transport?: PushtaskConfig['transport'];
}

async function measure(mode: Mode): Promise<{ latency: Summary; upload: Summary; timeouts: number }> {
  const { master, files, close } = await startMaster({
    name: `latency-${mode.fsEvents ? 'watch' : 'poll'}`,
    config: { fsEvents: mode.fsEvents, intervalMs: mode.intervalMs, ...(mode.transport ? { transport: mode.transport } : {}) },
  });
  const file = files[0]!;
  const latencies: number[] = [];
  const uploadMs: number[] = [];
  let timeouts = 0;
  try {
    for (let i = 0; i < mode.samples; i += 1) {
      await sleep(mode.gapMs());
      fs.appendFileSync(file, `${Date.now()},${i}\n`);
      const size = fs.statSync(file).size;
      const delivered = nextUpload(master, file, size, 2 * mode.intervalMs + 5000);
      const t0 = process.hrtime.bigint();
      master.notify(file);
      const event = await delivered;
      if (!event) {
        timeouts += 1;
        continue;
      }
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      uploadMs.push(event.ms);
    }
  } finally {
    await close();
  }
  return { latency: summarize(latencies), upload: summarize(uploadMs), timeouts };
}

export const latencyBench: Bench = async ({ quick }) => {
  const pollInterval = quick ? 500 : 2000;
  const modes: Mode[] = [
    { label: 'watch', fsEvents: true, intervalMs: 2000, samples: quick ? 30 : 200, gapMs: () => Math.random() * 20 },
    { label: 'poll', fsEvents: false, intervalMs: pollInterval, samples: quick ? 8 : 20, gapMs: () => Math.random() * pollInterval },
  ];
  const rows: Row[] = [];
  for (const mode of modes) {
    const gap = mode.label === 'watch' ? '0–20 ms' : `0–${mode.intervalMs} ms (spreads samples over the poll phase)`;
    console.log(`  ${mode.label}: fsEvents ${mode.fsEvents}, intervalMs ${mode.intervalMs}, ${mode.samples} sequential samples, random pause ${gap}`);
    const { latency, upload, timeouts } = await measure(mode);
    console.log(`    notify → uploaded event  ${formatSummary(latency, 'ms')}${timeouts ? `  ${timeouts} TIMED OUT` : ''}`);
    console.log(`    of which upload (event.ms) ${formatSummary(upload, 'ms', ['median', 'p99', 'max'])}`);
    const bench = `latency/${mode.label}`;
    rows.push(
      mode.label === 'watch'
        ? goalRow(bench, 'median', latency.median, 'ms', 25)
        : { bench, metric: `median (interval ${mode.intervalMs} ms)`, value: latency.median, unit: 'ms' },
      { bench, metric: 'p90', value: latency.p90, unit: 'ms' },
      { bench, metric: 'p99', value: latency.p99, unit: 'ms' },
      { bench, metric: 'max', value: latency.max, unit: 'ms' },
    );
    if (timeouts) rows.push({ bench, metric: 'timeouts', value: timeouts, unit: '' });
  }
  console.log('  (pysubtask, 2 s poll: median ≈ 1000 ms, max ≈ 2000 ms)');
  rows.push(...(await sftpLatency(quick)));
  return rows;
};

/** notify → delivered of a small CSV over SFTP to OpenSSH on loopback (one open connection). */
export async function sftpLatency(quick: boolean): Promise<Row[]> {
  const missing = sshdUnavailable();
  if (missing) {
    console.log(`  sftp: skipped (${missing})`);
    return [];
  }
  const sshd = (await startSshd())!;
  try {
    const transport = { type: 'sftp' as const, host: sshd.host, port: sshd.port, username: sshd.username, privateKey: sshd.privateKeyPath, knownHosts: sshd.knownHostsPath, remoteDir: `${sshd.dir}/in`, transfers: 1 };
    const samples = quick ? 30 : 200;
    console.log(`  sftp: OpenSSH sshd on loopback, fsEvents true, ${samples} sequential samples, random pause 0–20 ms`);
    const { latency, upload, timeouts } = await measure({ label: 'sftp', fsEvents: true, intervalMs: 2000, samples, gapMs: () => Math.random() * 20, transport });
    console.log(`    notify → uploaded event  ${formatSummary(latency, 'ms')}${timeouts ? `  ${timeouts} TIMED OUT` : ''}`);
    console.log(`    of which upload (event.ms) ${formatSummary(upload, 'ms', ['median', 'p99', 'max'])}`);
    const rows: Row[] = [goalRow('latency/sftp', 'median', latency.median, 'ms', 5), { bench: 'latency/sftp', metric: 'p99', value: latency.p99, unit: 'ms' }];
    if (timeouts) rows.push({ bench: 'latency/sftp', metric: 'timeouts', value: timeouts, unit: '' });
    return rows;
  } finally {
    await sshd.stop();
  }
}
