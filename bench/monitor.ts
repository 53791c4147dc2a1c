/**
 * `pushtask monitor` over a fleet of 1,000 fake clients (heartbeat + status file each): the time
 * of one cycle, on the local transport and over loopback SFTP (OpenSSH's sshd). "Cold" is a new
 * monitor's first cycle (connections opened, every file read: 1,000 heartbeats + 900 status
 * files); "warm" is the next one, where only changed files are read (here: none, then 10 %).
 * Goal: a cycle ≤ 5 s.
 */
import path from 'node:path';
import { resolveConfig } from '../src/config/resolve.js';
import { DEFAULT_THRESHOLDS } from '../src/monitor/fleet.js';
import { FleetMonitor } from '../src/monitor/fleetMonitor.js';
import { FleetReader } from '../src/monitor/reader.js';
import type { PushtaskConfig } from '../src/config/schema.js';
import { writeFakeClient, writeFakeFleet } from '../test/helpers/fakeFleet.js';
import { startSshd, sshdUnavailable } from '../test/helpers/sshd.js';
import { fmt, goalRow, summarize, tempDir, type Bench, type Row } from './lib.js';

const CLIENTS = 1000;
const GOAL_MS = 5000;

async function measure(label: string, transport: PushtaskConfig['transport'], fleetDir: string, rounds: number, connections?: number): Promise<Row[]> {
  const cold: number[] = [];
  const warm: number[] = [];
  const changed: number[] = [];
  for (let round = 0; round < rounds; round += 1) {
    const config = resolveConfig({ watch: [{ file: 'monitor/unused' }], transport, spoolDir: 'monitor/spool', log: { console: false } }, { cwd: path.dirname(fleetDir) });
    const reader = await FleetReader.open(config, connections ? { connections } : {});
    try {
      const monitor = new FleetMonitor(reader, DEFAULT_THRESHOLDS, 10);
      const signal = new AbortController().signal;
      const first = await monitor.cycle(signal);
      if (first.error || first.clients.length !== CLIENTS || first.reads !== CLIENTS * 1.9) {
        throw new Error(`${label}: unexpected first cycle: ${first.error ?? `${first.clients.length} clients, ${first.reads} reads`}`);
      }
      cold.push(first.cycleMs!);
      warm.push((await monitor.cycle(signal)).cycleMs!);
      // A tenth of the fleet wrote a new heartbeat and status file since.
      for (let i = round % 10; i < CLIENTS; i += 10) writeFakeClient(fleetDir, { name: `logger-${String(i).padStart(4, '0')}`, ageSec: 0 });
      const third = await monitor.cycle(signal);
      if (third.reads !== 200) throw new Error(`${label}: expected 200 reads after 100 clients changed, got ${third.reads}`);
      changed.push(third.cycleMs!);
    } finally {
      await reader.close();
    }
  }
  const c = summarize(cold);
  const w = summarize(warm);
  const t = summarize(changed);
  console.log(`  ${label}: cold ${fmt(c.median, 0)} ms median (${cold.map((ms) => fmt(ms, 0)).join(', ')}); warm ${fmt(w.median, 0)} ms; 10 % changed ${fmt(t.median, 0)} ms`);
  return [
    goalRow('monitor', `1,000 clients, ${label}: cycle, cold (median of ${rounds})`, c.median, 'ms', GOAL_MS),
    { bench: 'monitor', metric: `1,000 clients, ${label}: cycle, nothing changed`, value: w.median, unit: 'ms' },
    { bench: 'monitor', metric: `1,000 clients, ${label}: cycle, 10 % changed`, value: t.median, unit: 'ms' },
  ];
}

export const monitorBench: Bench = async ({ quick }) => {
  const rounds = quick ? 2 : 5;
  const temp = tempDir('monitor');
  const fleetDir = path.join(temp.dir, 'fleet');
  const rows: Row[] = [];
  try {
    writeFakeFleet(fleetDir, CLIENTS);
    rows.push(...(await measure('local folder', { type: 'local', dir: fleetDir }, fleetDir, rounds)));
    const unavailable = sshdUnavailable();
    if (unavailable) {
      console.log(`  sftp skipped: ${unavailable}`);
      return rows;
    }
    const sshd = (await startSshd())!;
    try {
      const sftp: PushtaskConfig['transport'] = {
        type: 'sftp',
        host: sshd.host,
        port: sshd.port,
        username: sshd.username,
        privateKey: sshd.privateKeyPath,
        knownHosts: sshd.knownHostsPath,
        remoteDir: fleetDir,
      };
      rows.push(...(await measure('loopback SFTP (OpenSSH)', sftp, fleetDir, rounds)));
      rows.push(...(await measure('loopback SFTP (OpenSSH), 1 connection', sftp, fleetDir, rounds, 1)).slice(0, 1));
    } finally {
      await sshd.stop();
    }
  } finally {
    temp.cleanup();
  }
  return rows;
};
