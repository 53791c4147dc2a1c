/**
 * pushtask on a simulated WAN link (issue 16): OpenSSH's sshd behind test/helpers/tcpProxy.ts,
 * which adds LATENCY_MS each way (one round trip = 2 × LATENCY_MS) and, where said, limits
 * bandwidth. Reports
 *   - round trips per small delivery (replace and append mode) on an open connection, and after the
 *     dead time closed it (with a login), and TCP connections per delivery;
 *   - 100 × 8 KiB dropped into a running agent vs OpenSSH `sftp -b` and `rclone copy` (defaults),
 *     through the same proxy in the same run;
 *   - the accuracy of `bandwidthLimit` (the marginal rate between a small and a large transfer,
 *     so fixed round trips cancel), for one lane and for four lanes sharing it;
 *   - bytes on the wire per CSV append with and without `compress: true`.
 * Needs root, /usr/sbin/sshd, sftp and rclone (Debian: openssh-server openssh-client rclone).
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { PushtaskConfig, TaskMaster as TaskMasterClass } from '../src/index.js';
import { startSshd, sshdUnavailable, type SshdServer } from '../test/helpers/sshd.js';
import { startTcpProxy, type LinkShape, type TcpProxy } from '../test/helpers/tcpProxy.js';
import { fmt, goalAtLeastRow, goalRow, loadTaskMaster, nextUpload, sleep, summarize, tempDir, waitForUploads, type Bench, type Row } from './lib.js';

const LATENCY_MS = 50;
const RTT_MS = 2 * LATENCY_MS;
const KiB = 1024;
const MiB = 1024 * KiB;
/** The issue's link: 256 KiB/s each way. */
const WAN: LinkShape = { latencyMs: LATENCY_MS, upBytesPerSecond: 256 * KiB, downBytesPerSecond: 256 * KiB };
const CSV_LINE = (i: number) => `2026-12-05T08:${String(Math.floor(i / 60) % 60).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}.${String(i % 1000).padStart(3, '0')}Z,${1000 + (i % 97)},${(Math.sin(i) * 10).toFixed(4)},ok\n`;

interface Link {
  sshd: SshdServer;
  proxy: TcpProxy;
  knownHosts: string;
  work: string;
  TaskMaster: typeof TaskMasterClass;
}

let serial = 0;

/** A master on the sftp transport through the proxy; `watch` entries and extra config given. */
async function startAgent(link: Link, setup: Partial<PushtaskConfig> & Pick<PushtaskConfig, 'watch'>, compress = false): Promise<{ master: TaskMasterClass; remoteDir: string; stop(): Promise<void> }> {
  const dir = path.join(link.work, `agent-${(serial += 1)}`);
  const remoteDir = path.join(link.work, `remote-${serial}`);
  fs.mkdirSync(dir, { recursive: true });
  fs.mkdirSync(remoteDir, { recursive: true });
  const { sshd, proxy } = link;
  const master = new link.TaskMaster(
    {
      transport: { type: 'sftp', host: sshd.host, port: proxy.port, username: sshd.username, privateKey: sshd.privateKeyPath, knownHosts: link.knownHosts, remoteDir, compress },
      spoolDir: path.join(dir, 'spool'),
      log: { dir: path.join(dir, 'logs'), console: false },
      ...setup,
    },
    { cwd: dir },
  );
  master.on('error', () => undefined);
  master.on('upload-failed', (event) => console.log(`    (upload failed: ${event.error.message})`));
  if (process.env.LINK_DEBUG) master.on('uploaded', (event) => console.log(`    (uploaded ${event.file} ${event.bytes} B in ${event.ms} ms)`));
  await master.start();
  return { master, remoteDir, stop: () => master.stop() };
}

interface DeliverySamples {
  rtts: number[];
  connections: number[];
}

/** Appends a CSV line, notifies, waits for delivery: `samples` times, `pauseMs` apart. */
async function deliveries(link: Link, mode: 'replace' | 'append', samples: number, pauseMs: number, deadTimeMs: number): Promise<DeliverySamples> {
  const file = path.join(link.work, `data-${(serial += 1)}.csv`);
  fs.writeFileSync(file, 'time,value,x,state\n');
  // intervalMs 200: the agent's tick checks the dead time (default every 2 s).
  const agent = await startAgent(link, { watch: [{ file, mode }], deadTimeMs, intervalMs: 200 });
  const result: DeliverySamples = { rtts: [], connections: [] };
  try {
    if (!(await nextUpload(agent.master, file, 0, 60_000))) throw new Error('the initial upload did not arrive within 60 s');
    for (let i = 0; i < samples; i += 1) {
      await sleep(pauseMs);
      fs.appendFileSync(file, CSV_LINE(i));
      const size = fs.statSync(file).size;
      const accepted = link.proxy.accepted;
      // Append mode's event carries the bytes appended, replace mode's the file's size.
      const delivered = nextUpload(agent.master, file, mode === 'append' ? 1 : size, 60_000);
      const t0 = performance.now();
      agent.master.notify(file);
      if (!(await delivered)) throw new Error(`delivery ${i} did not arrive within 60 s`);
      result.rtts.push((performance.now() - t0) / RTT_MS);
      result.connections.push(link.proxy.accepted - accepted);
    }
  } finally {
    await agent.stop();
  }
  return result;
}

/** Files in a folder, renamed into a running agent's drop folder at once; seconds until all are uploaded. */
async function dropBatch(link: Link, files: string[], extra: Partial<PushtaskConfig> = {}): Promise<{ seconds: number; remoteDir: string }> {
  const drop = path.join(link.work, `drop-${(serial += 1)}`);
  fs.mkdirSync(drop);
  const agent = await startAgent(link, { watch: [{ dir: drop, stableMs: 0 }], deadTimeMs: 600_000, ...extra });
  try {
    const all = waitForUploads(agent.master, files.length, 600_000);
    const t0 = performance.now();
    for (const file of files) fs.renameSync(file, path.join(drop, path.basename(file)));
    const seen = await all;
    if (seen < files.length) throw new Error(`only ${seen} of ${files.length} files uploaded within 600 s`);
    return { seconds: (performance.now() - t0) / 1000, remoteDir: agent.remoteDir };
  } finally {
    await agent.stop();
  }
}

function makeFiles(dir: string, count: number, bytes: number): string[] {
  fs.mkdirSync(dir, { recursive: true });
  return Array.from({ length: count }, (_, i) => {
    const file = path.join(dir, `f${String(i).padStart(4, '0')}.bin`);
    fs.writeFileSync(file, Buffer.alloc(bytes, i % 251));
    return file;
  });
}

function countFiles(dir: string): number {
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((name) => !name.startsWith('.')).length : 0;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${command} exited with ${code ?? signal}: ${stderr.trim().slice(-400)}`));
    });
  });
}

const quote = (text: string) => `"${text.replace(/(["\\])/g, '\\$1')}"`;

async function opensshBatch(link: Link, files: string[], remoteDir: string): Promise<number> {
  const batch = path.join(link.work, `batch-${(serial += 1)}`);
  fs.writeFileSync(batch, [`mkdir ${quote(remoteDir)}`, ...files.map((file) => `put ${quote(file)} ${quote(`${remoteDir}/${path.basename(file)}`)}`)].join('\n') + '\n');
  const { sshd, proxy } = link;
  const t0 = performance.now();
  await run('sftp', ['-q', '-b', batch, '-F', '/dev/null', '-i', sshd.privateKeyPath, '-o', `UserKnownHostsFile=${link.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-P', String(proxy.port), `${sshd.username}@${sshd.host}`]);
  return (performance.now() - t0) / 1000;
}

async function rcloneBatch(link: Link, source: string, remoteDir: string): Promise<number> {
  const { sshd, proxy } = link;
  const remote = `:sftp,host=${sshd.host},port=${proxy.port},user=${sshd.username},key_file=${quote(sshd.privateKeyPath)},known_hosts_file=${quote(link.knownHosts)}:${remoteDir}`;
  const env = { ...process.env, RCLONE_CONFIG: path.join(link.work, 'rclone.conf') };
  const t0 = performance.now();
  await run('rclone', ['copy', '-q', source, remote], env);
  return (performance.now() - t0) / 1000;
}

/** Bytes per second between a `small` and a `large` batch of `count` files (fixed costs cancel). */
async function marginalRate(link: Link, limit: string, count: number, small: number, large: number): Promise<number> {
  const a = await dropBatch(link, makeFiles(path.join(link.work, `bw-a-${(serial += 1)}`), count, small), { bandwidthLimit: limit });
  const b = await dropBatch(link, makeFiles(path.join(link.work, `bw-b-${(serial += 1)}`), count, large), { bandwidthLimit: limit });
  return (count * (large - small)) / (b.seconds - a.seconds);
}

/** Wire bytes client → server per CSV append of `bytes`, on an open connection. */
async function appendWire(link: Link, compress: boolean, appends: number, bytes: number): Promise<number> {
  const file = path.join(link.work, `append-${(serial += 1)}.csv`);
  let line = 0;
  const chunk = () => {
    let text = '';
    while (text.length < bytes) text += CSV_LINE((line += 1));
    return text;
  };
  fs.writeFileSync(file, chunk());
  const agent = await startAgent(link, { watch: [{ file, mode: 'append' }], deadTimeMs: 600_000 }, compress);
  try {
    if (!(await nextUpload(agent.master, file, 0, 60_000))) throw new Error('the initial upload did not arrive within 60 s');
    // One append before counting: append mode reads the remote tail once per connection.
    for (let i = 0; i <= appends; i += 1) {
      if (i === 1) link.proxy.resetCounters();
      fs.appendFileSync(file, chunk());
      const delivered = nextUpload(agent.master, file, 1, 60_000);
      agent.master.notify(file);
      if (!(await delivered)) throw new Error(`append ${i} did not arrive within 60 s`);
    }
    return link.proxy.bytesUp / appends;
  } finally {
    await agent.stop();
  }
}

export const linkBench: Bench = async ({ quick }) => {
  const unavailable = sshdUnavailable() ?? missingTool();
  if (unavailable) {
    console.log(`  skipped: ${unavailable}`);
    return [];
  }
  const temp = tempDir('link');
  const home = path.join(temp.dir, 'home');
  fs.mkdirSync(home);
  const sshd = (await startSshd({ extraConfig: [`SetEnv HOME=${home}`] }))!;
  const proxy = await startTcpProxy(sshd.port, '127.0.0.1', WAN);
  const knownHosts = path.join(temp.dir, 'known_hosts');
  fs.writeFileSync(knownHosts, `[127.0.0.1]:${proxy.port} ${sshd.hostPublicKey}\n`);
  const link: Link = { sshd, proxy, knownHosts, work: temp.dir, TaskMaster: await loadTaskMaster('dist') };
  const rows: Row[] = [];
  const samples = quick ? 5 : 15;
  try {
    console.log(`  link: ${LATENCY_MS} ms each way (round trip ${RTT_MS} ms), 256 KiB/s each way; OpenSSH sshd ${sshd.port} behind proxy ${proxy.port}`);

    const replace = await deliveries(link, 'replace', samples, 200, 600_000);
    const append = await deliveries(link, 'append', samples, 200, 600_000);
    const dead = await deliveries(link, 'replace', quick ? 3 : 6, 2500, 1000);
    const line = (label: string, s: DeliverySamples) => {
      const r = summarize(s.rtts);
      console.log(`    ${label.padEnd(44)} median ${fmt(r.median)} RTT (min ${fmt(r.min)}, max ${fmt(r.max)}), connections per delivery ${fmt(summarize(s.connections).median)} (n=${r.n})`);
      return r.median;
    };
    rows.push(goalRow('link', 'small delivery, open connection', line('small delivery, open connection', replace), 'RTT', 2.2));
    rows.push(goalRow('link', 'append, open connection', line('append (1 CSV line), open connection', append), 'RTT', 2.2));
    rows.push(goalRow('link', 'small delivery after the dead time (login)', line('small delivery after the dead time (login)', dead), 'RTT', 10));
    rows.push({ bench: 'link', metric: 'connections per delivery after the dead time', value: summarize(dead.connections).median, unit: '' });

    // The batch: 100 × 8 KiB, each tool through the same proxy.
    const count = quick ? 30 : 100;
    const source = path.join(temp.dir, 'batch-source');
    const files = makeFiles(source, count, 8 * KiB);
    const opensshDir = path.join(temp.dir, 'remote-openssh');
    const openssh = await opensshBatch(link, files, opensshDir);
    const rcloneDir = path.join(temp.dir, 'remote-rclone');
    const rclone = await rcloneBatch(link, source, rcloneDir);
    const staged = makeFiles(path.join(temp.dir, 'batch-stage'), count, 8 * KiB);
    const pushtask = await dropBatch(link, staged);
    for (const [label, dir] of [['openssh', opensshDir], ['rclone', rcloneDir], ['pushtask', pushtask.remoteDir]] as const) {
      if (countFiles(dir) !== count) throw new Error(`${label}: ${countFiles(dir)} of ${count} files arrived`);
    }
    console.log(`    ${count} × 8 KiB: pushtask ${fmt(pushtask.seconds)} s (drop folder, stableMs 0, transfers 4, login included), OpenSSH sftp -b ${fmt(openssh)} s, rclone copy ${fmt(rclone)} s`);
    rows.push({ bench: 'link', metric: `${count} × 8 KiB: pushtask`, value: pushtask.seconds, unit: 's' });
    rows.push({ bench: 'link', metric: `${count} × 8 KiB: OpenSSH sftp -b`, value: openssh, unit: 's' });
    rows.push({ bench: 'link', metric: `${count} × 8 KiB: rclone copy`, value: rclone, unit: 's' });
    rows.push(goalAtLeastRow('link', `${count} × 8 KiB: rclone / pushtask`, rclone / pushtask.seconds, '×', 2));

    // bandwidthLimit: on a link with latency only, so the limit is the bottleneck.
    proxy.shape({ latencyMs: LATENCY_MS, upBytesPerSecond: null, downBytesPerSecond: null });
    const limit = 512 * KiB;
    const one = await marginalRate(link, '512k', 1, 512 * KiB, (quick ? 2 : 4) * MiB);
    const four = await marginalRate(link, '512k', 4, 128 * KiB, (quick ? 512 : 1024) * KiB);
    console.log(`    bandwidthLimit 512k: one lane ${fmt(one / KiB)} KiB/s (${fmt(one / limit)}×), four lanes together ${fmt(four / KiB)} KiB/s (${fmt(four / limit)}×)`);
    rows.push(goalRow('link', 'bandwidthLimit 512k, one lane: |achieved / limit - 1|', Math.abs(one / limit - 1), '', 0.1));
    rows.push(goalRow('link', 'bandwidthLimit 512k, four lanes: |achieved / limit - 1|', Math.abs(four / limit - 1), '', 0.1));

    // Compression: bytes on the wire per ~1 KiB CSV append.
    proxy.shape({});
    const appends = quick ? 20 : 100;
    const plain = await appendWire(link, false, appends, 1024);
    const zlib = await appendWire(link, true, appends, 1024);
    console.log(`    CSV appends of ~1 KiB: ${fmt(plain, 0)} B on the wire each without compression, ${fmt(zlib, 0)} B with compress: true (${fmt(zlib / plain)}×)`);
    rows.push({ bench: 'link', metric: 'wire bytes per 1 KiB CSV append', value: plain, unit: 'B' });
    rows.push({ bench: 'link', metric: 'wire bytes per 1 KiB CSV append, compress', value: zlib, unit: 'B' });
    rows.push(goalRow('link', 'compressed / uncompressed append bytes', zlib / plain, '×', 0.4));
  } finally {
    await proxy.close();
    await sshd.stop();
    temp.cleanup();
  }
  return rows;
};

function missingTool(): string | null {
  for (const [tool, pkg] of [['sftp', 'openssh-client'], ['rclone', 'rclone']] as const) {
    try {
      execFileSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { stdio: 'pipe' });
    } catch {
      return `${tool} is missing (Debian package ${pkg})`;
    }
  }
  return null;
}
