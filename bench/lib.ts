/**
 * Shared helpers for the benchmarks: options, result rows, percentiles, temp folders, a master
 * on the local transport, and readers of /proc for another process's CPU time and RSS.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { PushtaskConfig, TaskMaster as TaskMasterClass, UploadedEvent } from '../src/index.js';
import { isAlive } from '../src/shared/processes.js';
import type { Transport } from '../src/transports/types.js';

export interface BenchOptions {
  /** Shorter windows and fewer samples: a smoke run, not numbers to quote. */
  quick: boolean;
}

/** One line of the summary table. */
export interface Row {
  bench: string;
  metric: string;
  value: number;
  unit: string;
  /** e.g. "< 50"; only for metrics with a goal. */
  goal?: string;
  met?: boolean;
}

export type Bench = (options: BenchOptions) => Promise<Row[]>;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

// ---- statistics --------------------------------------------------------------------------

export interface Summary {
  n: number;
  min: number;
  median: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (!sorted.length) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    n: sorted.length,
    min: sorted[0] ?? NaN,
    median: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? NaN,
    mean: sorted.reduce((sum, v) => sum + v, 0) / (sorted.length || 1),
  };
}

export function fmt(value: number, digits = 2): string {
  if (!Number.isFinite(value)) return String(value);
  return value >= 100 ? value.toFixed(0) : value.toFixed(digits);
}

export function formatSummary(s: Summary, unit: string, keys: readonly (keyof Summary)[] = ['median', 'p90', 'p99', 'max']): string {
  return keys.map((key) => `${key} ${fmt(s[key])}`).join('  ') + ` ${unit}  (n=${s.n})`;
}

export function goalRow(bench: string, metric: string, value: number, unit: string, below: number): Row {
  return { bench, metric, value, unit, goal: `< ${below}`, met: value < below };
}

/** A row whose goal is a floor: met when `value >= atLeast` (throughput, ratios). */
export function goalAtLeastRow(bench: string, metric: string, value: number, unit: string, atLeast: number): Row {
  return { bench, metric, value, unit, goal: `≥ ${atLeast}`, met: value >= atLeast };
}

// ---- temp folders and masters --------------------------------------------------------------

export interface TempDir {
  dir: string;
  cleanup(): void;
}

export function tempDir(prefix: string): TempDir {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pushtask-bench-${prefix}-`));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Which build the master (and so its subtask) runs: `src` forks the subtask through the tsx
 * loader (development), `dist` runs compiled JavaScript with plain node, as an installed package.
 */
export type Runtime = 'src' | 'dist';

// One folder per bench process: two runs at once (or a run and a rebuild) must not delete the
// JavaScript the other one's subtasks are about to fork. Removed when the process exits.
const distDir = path.join(repoRoot, 'bench', 'results', `dist-${process.pid}`);
let distBuilt = false;

/** Folders of bench runs that ended without removing theirs (killed). */
function removeStaleDists(): void {
  const results = path.join(repoRoot, 'bench', 'results');
  for (const name of fs.existsSync(results) ? fs.readdirSync(results) : []) {
    const pid = /^dist-(\d+)$/.exec(name)?.[1];
    if (pid === undefined || isAlive(Number(pid))) continue;
    fs.rmSync(path.join(results, name), { recursive: true, force: true });
  }
}


/** Compiles src/ into bench/results/dist-<pid> (git-ignored) once per run; node_modules resolves from the repo. */
function buildDist(): void {
  if (distBuilt) return;
  removeStaleDists();
  fs.rmSync(distDir, { recursive: true, force: true });
  process.once('exit', () => fs.rmSync(distDir, { recursive: true, force: true }));
  const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', distDir, '--declaration', 'false', '--sourceMap', 'false'], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (error) {
    // Type errors still emit JavaScript; only a missing output is fatal.
    if (!fs.existsSync(path.join(distDir, 'index.js'))) throw error;
    console.warn('  (tsc reported type errors in src/; benchmarking the JavaScript it emitted anyway)');
  }
  distBuilt = true;
}

export async function loadTaskMaster(runtime: Runtime): Promise<typeof TaskMasterClass> {
  if (runtime === 'src') return (await import('../src/index.js')).TaskMaster;
  return (await loadCompiled<typeof import('../src/index.js')>('index.js')).TaskMaster;
}

/** A module of the compiled build, by its path below src/ with a .js ending (e.g. 'transports/index.js'). */
export async function loadCompiled<Module>(modulePath: string): Promise<Module> {
  buildDist();
  return (await import(pathToFileURL(path.join(distDir, modulePath)).href)) as Module;
}

export interface BenchMaster {
  master: TaskMasterClass;
  dir: string;
  /** The data files, absolute. */
  files: string[];
  /** Stops the master (force) and removes the temp folder. */
  close(): Promise<void>;
}

export interface MasterSetup {
  name: string;
  /** How many data files to create and watch. @default 1 */
  files?: number;
  config?: Partial<PushtaskConfig>;
  runtime?: Runtime;
}

/**
 * A temp folder with `files` data files (one CSV line each), watched by a started master on the
 * local transport. Waits until the catch-up uploads of those files at start are done.
 */
export async function startMaster(setup: MasterSetup): Promise<BenchMaster> {
  const temp = tempDir(setup.name);
  const dataDir = path.join(temp.dir, 'data');
  fs.mkdirSync(dataDir);
  const count = setup.files ?? 1;
  const files = Array.from({ length: count }, (_, i) => path.join(dataDir, `file${String(i).padStart(4, '0')}.csv`));
  for (const file of files) fs.writeFileSync(file, 'time,value\n');
  const TaskMaster = await loadTaskMaster(setup.runtime ?? 'src');
  const master = new TaskMaster(
    {
      watch: files.map((file) => ({ file })),
      transport: { type: 'local', dir: path.join(temp.dir, 'remote') },
      log: { dir: path.join(temp.dir, 'logs'), console: false },
      ...setup.config,
    },
    { cwd: temp.dir },
  );
  master.on('error', () => undefined);
  const initial = waitForUploads(master, count, 60_000);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await master.stop();
    temp.cleanup();
  };
  try {
    await master.start();
    const seen = await initial;
    if (seen < count) console.warn(`  (only ${seen} of ${count} initial uploads seen within 60 s)`);
  } catch (error) {
    await close();
    throw error;
  }
  return { master, dir: temp.dir, files, close };
}

/** Resolves with how many uploads were seen once `count` are, or at the timeout. */
export function waitForUploads(master: TaskMasterClass, count: number, timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    let seen = 0;
    const done = () => {
      clearTimeout(timer);
      master.off('uploaded', onUploaded);
      resolve(seen);
    };
    const onUploaded = () => {
      if (++seen >= count) done();
    };
    const timer = setTimeout(done, timeoutMs);
    master.on('uploaded', onUploaded);
  });
}

/** The next `uploaded` event for `file` that carries at least `bytes` bytes, or null at the timeout. */
export function nextUpload(master: TaskMasterClass, file: string, bytes: number, timeoutMs: number): Promise<UploadedEvent | null> {
  return new Promise((resolve) => {
    const finish = (event: UploadedEvent | null) => {
      clearTimeout(timer);
      master.off('uploaded', onUploaded);
      resolve(event);
    };
    const onUploaded = (event: UploadedEvent) => {
      if (event.file === file && event.bytes >= bytes) finish(event);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    master.on('uploaded', onUploaded);
  });
}

// ---- /proc readers (Linux) ------------------------------------------------------------------

let clockTicks: number | undefined;

/** Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`, normally 100). */
export function clkTck(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** utime + stime of a process (all its threads), in clock ticks. */
export function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  return Number(fields[11]) + Number(fields[12]);
}

/**
 * CPU of this process's children that have ended and been waited for (utime + stime of the
 * dead, /proc/self/stat fields 16 and 17): a baseline tool's CPU, as the difference around its run.
 */
export function childrenCpuSeconds(): number {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / clkTck();
}

/** CPU seconds of a set of processes (all their threads), e.g. a server's daemons. */
export function cpuSecondsOf(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      total += cpuNs(pid);
    } catch {
      // ended meanwhile
    }
  }
  return total / 1e9;
}

/**
 * Run time of all of a process's threads in ns, from /proc/<pid>/task/<tid>/schedstat: precise,
 * unlike the clock ticks of /proc/<pid>/stat (10 ms each). Threads that ended are not counted.
 */
export function cpuNs(pid: number): number {
  let total = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return total;
}

/** A field of /proc/<pid>/status in MB: VmRSS (resident set) or RssAnon (its private, non-file part). */
export function statusMb(pid: number, field: 'VmRSS' | 'RssAnon' = 'VmRSS'): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
  return match ? Number(match[1]) / 1024 : NaN;
}

export interface CpuWindow {
  /** CPU time used during the window as % of one core. */
  cpuPercent: number;
  /** CPU seconds used during the window. */
  cpuSec: number;
  /** The same from schedstat (ns resolution), as % of one core. */
  preciseCpuPercent: number;
  rssMb: number;
  /** The anonymous part of the RSS: what the process adds beyond the (shared) node binary. */
  anonMb: number;
  seconds: number;
}

/** Measures the CPU time of each pid over the same `ms` window, and their RSS at its end. */
export async function measureWindow(pids: readonly number[], ms: number): Promise<CpuWindow[]> {
  const start = pids.map(cpuTicks);
  const startNs = pids.map(cpuNs);
  const t0 = process.hrtime.bigint();
  await sleep(ms);
  const end = pids.map(cpuTicks);
  const endNs = pids.map(cpuNs);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return pids.map((pid, i) => {
    const cpuSec = (end[i]! - start[i]!) / clkTck();
    const preciseCpuPercent = (100 * (endNs[i]! - startNs[i]!)) / 1e9 / seconds;
    return { cpuSec, cpuPercent: (100 * cpuSec) / seconds, preciseCpuPercent, rssMb: statusMb(pid), anonMb: statusMb(pid, 'RssAnon'), seconds };
  });
}

export function loadAverage(): string {
  return os.loadavg().map((v) => v.toFixed(2)).join(' ');
}

/**
 * The file system holding `dir` (Linux: its type, and for ext4 whether it has a journal). It
 * matters for the many-small-files cases: on ext4 without a journal, creating a file skips every
 * inode freed in the last 30 s to 5 min, one lookup each, so a tool that writes and deletes spool
 * files slows down as a run (and the runs before it) delete files. pushtask's 1,000 × 100 KiB over
 * SFTP took 0.84× rclone's time there, 1.71× on tmpfs (2026-12-06); rclone itself did not change.
 */
export function describeFileSystem(dir: string): string {
  let mounts: string[];
  try {
    mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  } catch {
    return 'file system unknown';
  }
  const real = fs.realpathSync(dir);
  let best: { point: string; type: string; source: string } | null = null;
  for (const line of mounts) {
    const [left, right] = line.split(' - ');
    const point = left?.split(' ')[4];
    const [type, source] = right?.split(' ') ?? [];
    if (!point || !type || !source) continue;
    const inside = real === point || real.startsWith(point.endsWith('/') ? point : `${point}/`);
    if (inside && (!best || point.length >= best.point.length)) best = { point, type, source };
  }
  if (!best) return 'file system unknown';
  if (best.type !== 'ext4') return best.type;
  const device = path.basename(best.source);
  const journaled = fs.existsSync('/proc/fs/jbd2') && fs.readdirSync('/proc/fs/jbd2').some((name) => name.startsWith(`${device}-`));
  return journaled ? 'ext4' : 'ext4 without a journal (small-file cases slow down as files are deleted)';
}

// ---- fixtures and tools shared by the throughput benchmarks (sftp, s3) ------------------------

const MiB = 1024 * 1024;

/** A file of `bytes`: one random MiB repeated, each MiB stamped with its index (a chunk written at the wrong offset cannot hash the same). */
export function makeStampedFile(file: string, bytes: number): void {
  const block = randomBytes(MiB);
  const fd = fs.openSync(file, 'w');
  try {
    for (let offset = 0, index = 0; offset < bytes; offset += MiB, index += 1) {
      block.writeBigUInt64BE(BigInt(index), 0);
      fs.writeSync(fd, block, 0, Math.min(MiB, bytes - offset));
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** `count` files of `bytes` random bytes in `dir` (created), named f0000.bin…; name → sha256 hex. */
export function makeRandomFiles(dir: string, count: number, bytes: number): Map<string, string> {
  fs.mkdirSync(dir, { recursive: true });
  const files = new Map<string, string>();
  for (let i = 0; i < count; i += 1) {
    const name = `f${String(i).padStart(4, '0')}.bin`;
    const data = randomBytes(bytes);
    fs.writeFileSync(path.join(dir, name), data);
    files.set(name, createHash('sha256').update(data).digest('hex'));
  }
  return files;
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 4 * MiB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Runs a tool to its end (stdout ignored); rejects with the end of its stderr unless it exits 0. */
export function runTool(command: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 900_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${command} exited with ${code ?? signal}: ${stderr.trim().slice(-500)}`));
    });
  });
}

/** One timed run of a tool; pushtask's runs add their own figures. */
export interface Timing {
  seconds: number;
  /** pushtask: extra figures for the log line. */
  notes?: string;
  /** pushtask (a): the transport's share (the `uploaded` event's ms). */
  uploadSeconds?: number;
  /** CPU the tool used, all its threads: a baseline's process, or pushtask's subtask plus this process. */
  clientCpuSeconds?: number;
}

/** What the big-file runs need of a bench's fixture. */
export interface BigFileFixture {
  root: string;
  TaskMaster: typeof TaskMasterClass;
  bigFile: string;
  bigSize: number;
}

/** Everything of a config but `watch`, for a run in folder `work`. */
export type ConfigFor = (work: string) => Omit<PushtaskConfig, 'watch'>;

/** (a) A watched file linked into place after start (no catch-up upload), then notified; timed from notify. */
export async function timeBigFileNotified(fx: BigFileFixture, configFor: ConfigFor): Promise<Timing> {
  const work = fs.mkdtempSync(path.join(fx.root, 'pushtask-big-'));
  const watched = path.join(work, 'data', path.basename(fx.bigFile));
  fs.mkdirSync(path.dirname(watched));
  const master = new fx.TaskMaster({ watch: [{ file: watched }], ...configFor(work) }, { cwd: work });
  master.on('error', () => undefined);
  const failures: string[] = [];
  master.on('upload-failed', (event) => failures.push(event.error.message));
  try {
    await master.start();
    fs.linkSync(fx.bigFile, watched);
    const delivered = nextUpload(master, watched, fx.bigSize, 900_000);
    const t0 = process.hrtime.bigint();
    master.notify(watched);
    const event = await delivered;
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (!event) throw new Error(`no uploaded event within 900 s${failures.length ? `: ${failures[0]}` : ''}`);
    return { seconds, uploadSeconds: event.ms / 1000, notes: `upload ${fmt(event.ms / 1000)} s of it` };
  } finally {
    await master.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** What the many-small-files runs need of a bench's fixture. */
export interface SmallFilesFixture {
  root: string;
  TaskMaster: typeof TaskMasterClass;
  /** The files, named as they go up. */
  smallDir: string;
  smallFiles: Map<string, unknown>;
}

export interface DropRun {
  /** The files are in the drop folder when the master starts (a backlog; timed from start()), or moved in at once after it started (a live drop; timed from the move). */
  atStart: boolean;
  /** The drop folder's `stableMs` (undefined: the default). */
  stableMs?: number;
}

/** (b) The fixture's small files through a drop folder (hard links, so no bytes are copied to set up). */
export async function timeDropFolder(fx: SmallFilesFixture, configFor: ConfigFor, { atStart, stableMs }: DropRun): Promise<Timing> {
  const work = fs.mkdtempSync(path.join(fx.root, 'pushtask-drop-'));
  const drop = path.join(work, 'drop');
  const stage = path.join(work, 'stage');
  fs.mkdirSync(drop);
  fs.mkdirSync(stage);
  const names = [...fx.smallFiles.keys()];
  for (const name of names) fs.linkSync(path.join(fx.smallDir, name), path.join(atStart ? drop : stage, name));
  const master = new fx.TaskMaster({ watch: [{ dir: drop, ...(stableMs === undefined ? {} : { stableMs }) }], ...configFor(work) }, { cwd: work });
  master.on('error', () => undefined);
  const failures: string[] = [];
  master.on('upload-failed', (event) => failures.push(event.error.message));
  const count = names.length;
  let first = 0;
  const uploadMs: number[] = [];
  const onUploaded = (event: UploadedEvent) => {
    first ||= performance.now();
    uploadMs.push(event.ms);
  };
  master.on('uploaded', onUploaded);
  const all = waitForUploads(master, count, 600_000);
  try {
    let t0 = performance.now();
    await master.start();
    const started = performance.now();
    const cpu0 = cpuNs(master.subtaskPid!);
    // This process: the TaskMaster, the bench's listeners and any proxy of the run (S3 (d)).
    const masterCpu0 = process.cpuUsage();
    if (!atStart) {
      t0 = performance.now();
      for (const name of names) fs.renameSync(path.join(stage, name), path.join(drop, name));
    }
    const seen = await all;
    const end = performance.now();
    const subtaskCpu = (cpuNs(master.subtaskPid!) - cpu0) / 1e9;
    const masterCpuUsed = process.cpuUsage(masterCpu0);
    const masterCpu = (masterCpuUsed.user + masterCpuUsed.system) / 1e6;
    if (seen < count) throw new Error(`only ${seen} of ${count} uploaded events within 600 s${failures.length ? `: ${failures[0]}` : ''}`);
    const perFile = summarize(uploadMs);
    return {
      seconds: (end - t0) / 1000,
      notes:
        (atStart ? `start() ${fmt((started - t0) / 1000)} s, ` : '') +
        `first upload at ${fmt((first - t0) / 1000)} s; per-file upload median ${fmt(perFile.median)} ms (p90 ${fmt(perFile.p90)}); subtask CPU ${fmt(subtaskCpu)} s, bench process (master) ${fmt(masterCpu)} s` +
        (failures.length ? `; ${failures.length} failed tries (${failures[0]})` : ''),
      clientCpuSeconds: subtaskCpu + masterCpu,
    };
  } finally {
    master.off('uploaded', onUploaded);
    await master.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The configured transport of the compiled build (with the config defaults) on its own, without
 * the agent and its spool: `lanes` connected transports, closed after `work` and the folder removed.
 */
async function withTransportLanes<T>(root: string, configFor: ConfigFor, lanes: number, work: (transports: Transport[], signal: AbortSignal) => Promise<T>): Promise<T> {
  const { resolveConfig } = await loadCompiled<typeof import('../src/config/index.js')>('config/index.js');
  const { loadTransport } = await loadCompiled<typeof import('../src/transports/index.js')>('transports/index.js');
  const { silentLogger } = await loadCompiled<typeof import('../src/shared/logger.js')>('shared/logger.js');
  const dir = fs.mkdtempSync(path.join(root, 'pushtask-transport-'));
  const config = resolveConfig({ watch: [{ file: path.join(dir, 'unused.csv') }], ...configFor(dir) }, { cwd: dir });
  const signal = new AbortController().signal;
  const make = await loadTransport(config.transport, { logger: silentLogger(), stateDir: dir });
  const transports = Array.from({ length: lanes }, () => make());
  try {
    return await work(transports, signal);
  } finally {
    await Promise.all(transports.map((transport) => transport.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * (a) The configured transport alone uploading the fixture itself, as the baseline tools do: the
 * same work minus the agent and its spool snapshot, so the two pushtask rows split a gap into
 * transport and snapshot.
 */
export async function timeTransportAlone(fx: BigFileFixture, configFor: ConfigFor): Promise<Timing> {
  const t0 = process.hrtime.bigint();
  return withTransportLanes(fx.root, configFor, 1, async ([transport], signal) => {
    await transport!.connect(signal);
    await transport!.upload({ localPath: fx.bigFile, remotePath: path.basename(fx.bigFile), mtime: new Date(), signal });
    return { seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
  });
}

/**
 * (b) The configured transport alone, `lanes` of it taking the fixture's small files in turn
 * straight from their folder, as `rclone copy` does: what the agent's work per file (drop folder,
 * sidecar, spool snapshot, bookkeeping) adds is the difference to the drop-folder rows.
 */
export async function timeTransportFiles(fx: SmallFilesFixture, configFor: ConfigFor, lanes: number): Promise<Timing> {
  const names = [...fx.smallFiles.keys()];
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  return withTransportLanes(fx.root, configFor, lanes, async (transports, signal) => {
    let next = 0;
    await Promise.all(
      transports.map(async (transport) => {
        await transport.connect(signal);
        for (let name = names[next++]; name !== undefined; name = names[next++]) {
          await transport.upload({ localPath: path.join(fx.smallDir, name), remotePath: name, mtime: new Date(), signal });
        }
      }),
    );
    const cpu = process.cpuUsage(cpu0);
    return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, clientCpuSeconds: (cpu.user + cpu.system) / 1e6 };
  });
}
