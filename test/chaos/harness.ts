/**
 * The chaos harness: a seeded mixed workload (appends, bursts, whole rewrites, drop-folder files,
 * deletions, a rotation) written by this process and notified through a host process that embeds
 * TaskMaster, while faults strike at random steps: links cut, the server down, the subtask and the
 * host kill -9ed, a spool on a tiny tmpfs that fills up. Afterwards every file is byte-identical on
 * the server, nothing else sits under a final name, the spool is drained, and the host's event loop
 * never stalled. Replay a run with PUSHTASK_SEED=<seed>.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { PushtaskConfig } from '../../src/index.js';
import { seededRandom } from '../helpers/appendWorkload.js';
import type { TcpProxy } from '../helpers/tcpProxy.js';
import { createWorkspace, waitFor, type Workspace } from '../helpers/workspace.js';
import { emptyLoopDelay, mergeLoopDelays, percentileMs, type LoopDelay } from './loopDelay.js';

/**
 * `silent-drop`: the link goes silent for 1–3 s (connections open then stay dead; keepalives must
 * notice); `slow-link`: 50 ms each way and 256 KiB/s for a while (issue 12's field link).
 */
export type FaultKind = 'cut-link' | 'cut-after-bytes' | 'server-down' | 'kill-subtask' | 'kill-host' | 'silent-drop' | 'slow-link';

/** How soon a delivery follows a link fault (issue 12): the bounds the suite asserts. */
export const RECOVERY_BOUNDS_MS = { 'cut-link': 3000, 'silent-drop': 5000 } as const;

/** The link's return after a fault, and how long until the next upload was confirmed. */
export interface Recovery {
  fault: keyof typeof RECOVERY_BOUNDS_MS;
  /** ms from the cut (or the link's return after a silent drop) to the next `Uploaded` line; null: none followed. */
  ms: number | null;
  /** Another fault struck before the delivery (its time does not count against the bound). */
  overlapped: boolean;
}

export interface Target {
  name: string;
  transport: PushtaskConfig['transport'];
  /** Where the server stores `remotePath` (below remoteDir) on this machine's disk. */
  storedPath(remotePath: string): string;
  /** The folder on disk that holds remoteDir, listed at the end. */
  storedRoot(): string;
  proxy?: TcpProxy;
  /** Makes the server unreachable / reachable again. */
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export interface ChaosOptions {
  seed: number;
  steps: number;
  faults: FaultKind[];
  /** Put the spool on a tmpfs this big (needs root); null: on the normal disk. */
  spoolTmpfsBytes: number | null;
  /** How long to wait for everything to arrive after the last step. */
  settleMs?: number;
}

export interface ChaosReport {
  target: string;
  seed: number;
  steps: number;
  actions: Record<string, number>;
  faults: Record<string, number>;
  /** Snapshot failures for a full spool (ENOSPC), counted in the subtask log. */
  spoolFullErrors: number;
  spoolOnTmpfs: boolean;
  filesChecked: number;
  bytesChecked: number;
  deletedDropFiles: number;
  uploads: number;
  /** Pooled over every host process of the run (and the bare baseline process). */
  hostLoop: LoopFigures;
  baselineLoop: LoopFigures;
  remoteTempFilesLeft: number;
  settleMs: number;
  /** One per cut-link and silent-drop fault. */
  recoveries: Recovery[];
}

const here = path.dirname(fileURLToPath(import.meta.url));
const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class Host {
  child: ChildProcess | null = null;
  subtaskPid: number | null = null;
  ready = false;
  /** The samples of the running host process. */
  #loopNow: LoopDelay = emptyLoopDelay();
  starts = 0;

  constructor(
    private readonly configFile: string,
    private readonly cwd: string,
  ) {}

  /** The samples of the host processes before this one. */
  #loopBefore: LoopDelay = emptyLoopDelay();

  /** Every host process's event-loop samples so far, pooled. */
  get loop(): LoopDelay {
    return mergeLoopDelays(this.#loopBefore, this.#loopNow);
  }

  async start(): Promise<void> {
    this.#loopBefore = this.loop;
    this.#loopNow = emptyLoopDelay();
    this.ready = false;
    this.starts += 1;
    const child = fork(path.join(here, 'host.ts'), [], {
      cwd: this.cwd,
      execArgv: ['--import', tsx],
      env: { ...process.env, PUSHTASK_CHAOS_CONFIG: this.configFile },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.child = child;
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('message', (message: { type: string; pid?: number; subtaskPid?: number; delay?: LoopDelay; message?: string }) => {
      if (message.type === 'ready') {
        this.ready = true;
        this.subtaskPid = message.subtaskPid ?? null;
      } else if (message.type === 'subtask') this.subtaskPid = message.pid ?? null;
      else if (message.type === 'loop' && message.delay) this.#loopNow = message.delay;
      else if (message.type === 'start-failed') stderr += `start failed: ${message.message}`;
    });
    await waitFor(() => this.ready || child.exitCode !== null, 'the host to start', 40_000);
    if (!this.ready) throw new Error(`The chaos host exited at start: ${stderr}`);
  }

  send(message: unknown): void {
    if (this.ready && this.child?.connected) this.child.send(message as never, () => undefined);
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.ready = false;
    child.kill('SIGKILL');
    if (child.exitCode === null && child.signalCode === null) await new Promise((resolve) => child.once('exit', resolve));
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    this.send({ type: 'stop' });
    await Promise.race([exited, sleep(15_000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** A bare Node process measuring its own event loop (baseline.ts) while the run goes on. */
function startBaseline(): { child: ChildProcess; loop: () => LoopDelay } {
  let loop = emptyLoopDelay();
  const child = fork(path.join(here, 'baseline.ts'), [], { execArgv: ['--import', tsx], stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
  child.on('message', (delay: LoopDelay) => (loop = delay));
  return { child, loop: () => loop };
}

export interface LoopFigures {
  samples: number;
  p99Ms: number;
  maxMs: number;
}

const loopFigures = (delay: LoopDelay): LoopFigures => ({ samples: delay.samples, p99Ms: percentileMs(delay, 99), maxMs: delay.maxMs });

function tryMountTmpfs(dir: string, bytes: number): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0700`, 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

export async function runChaos(target: Target, options: ChaosOptions): Promise<ChaosReport> {
  const ws: Workspace = createWorkspace(`pushtask-chaos-${target.name}-`);
  const random = seededRandom(options.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const spoolDir = ws.path('spool');
  fs.mkdirSync(spoolDir, { recursive: true });
  const spoolOnTmpfs = options.spoolTmpfsBytes !== null && tryMountTmpfs(spoolDir, options.spoolTmpfsBytes);
  if (options.spoolTmpfsBytes !== null && !spoolOnTmpfs) {
    console.log(`[chaos ${target.name}] spool on the normal disk: mounting a tmpfs needs root (disk-full faults not injected)`);
  }

  const config: PushtaskConfig = {
    watch: [
      { file: 'data/log-a.csv', mode: 'append' },
      { file: 'data/log-b.csv', mode: 'append', burstMode: { startTriggerMs: 50, expireMs: 300 } },
      { file: 'data/state.json' },
      { dir: 'drop', stableMs: 40 },
      { dir: 'drop-grow', mode: 'append', stableMs: 40 },
    ],
    transport: target.transport,
    spoolDir,
    intervalMs: 200,
    deadTimeMs: 1500,
    operationTimeoutMs: 4000,
    gracefulTimeoutMs: 3000,
    retry: { quickTries: 3, quickDelayMs: 40, longDelayMs: 250 },
    // Silent drops last 1–3 s here: keepalives must notice within one second.
    link: { keepaliveIntervalMs: 500, keepaliveCountMax: 1, stallTimeoutMs: 2000 },
    log: { dir: 'logs', level: 'info', console: false },
  } as PushtaskConfig;
  const configFile = ws.path('chaos-config.json');
  fs.writeFileSync(configFile, JSON.stringify({ config, cwd: ws.dir }), { mode: 0o600 });

  const data = (name: string) => ws.path('data', name);
  for (const dir of ['data', 'drop', 'drop-grow']) fs.mkdirSync(ws.path(dir), { recursive: true });
  fs.writeFileSync(data('log-a.csv'), 'seq,time,value\n');
  fs.writeFileSync(data('log-b.csv'), '');
  fs.writeFileSync(data('state.json'), '{}');
  fs.writeFileSync(ws.path('drop-grow', 'stream.log'), 'stream\n');

  const actions: Record<string, number> = {};
  const faults: Record<string, number> = {};
  const count = (into: Record<string, number>, key: string) => (into[key] = (into[key] ?? 0) + 1);
  /** Every version written of each drop file that was later deleted may be what the server holds. */
  const dropVersions = new Map<string, Set<string>>();
  const deleted = new Set<string>();
  let dropSeq = 0;

  const baseline = startBaseline();
  const host = new Host(configFile, ws.dir);
  const uploadsBefore = () => countInLog(ws.path('logs', 'pushtask-subtask.log'), /Uploaded /g);
  let serverDownUntil = 0;
  let cutAfterUntil = -1;
  let silentUntil = 0;
  let slowUntil = -1;
  /** Link faults whose recovery is measured: when the link was usable again. */
  const linkEvents: Array<{ fault: Recovery['fault']; at: number }> = [];
  const faultTimes: number[] = [];
  try {
    await host.start();
    for (let step = 0; step < options.steps; step += 1) {
      // ---- faults ------------------------------------------------------------------------------
      if (serverDownUntil && Date.now() > serverDownUntil) {
        await target.up();
        serverDownUntil = 0;
      }
      if (cutAfterUntil === step) target.proxy?.cutUpstreamAfter(null);
      if (silentUntil && Date.now() > silentUntil) {
        target.proxy?.blackhole(false);
        silentUntil = 0;
        linkEvents.push({ fault: 'silent-drop', at: Date.now() });
      }
      if (slowUntil === step) target.proxy?.shape({ latencyMs: 0, upBytesPerSecond: null, downBytesPerSecond: null });
      if (random() < 0.012 && options.faults.length) {
        const fault = pick(options.faults);
        count(faults, fault);
        faultTimes.push(Date.now());
        switch (fault) {
          case 'cut-link':
            target.proxy?.cutAll({ reset: random() < 0.5 });
            linkEvents.push({ fault: 'cut-link', at: Date.now() });
            break;
          case 'silent-drop':
            if (!silentUntil) {
              target.proxy?.blackhole('drop');
              silentUntil = Date.now() + 1000 + random() * 2000;
            }
            break;
          case 'slow-link':
            target.proxy?.shape({ latencyMs: 50, upBytesPerSecond: 256 * 1024, downBytesPerSecond: 256 * 1024 });
            slowUntil = step + 50 + Math.floor(random() * 100);
            break;
          case 'cut-after-bytes':
            target.proxy?.cutUpstreamAfter(1 + Math.floor(random() * 200_000));
            cutAfterUntil = step + 20 + Math.floor(random() * 60);
            break;
          case 'server-down':
            if (!serverDownUntil) {
              await target.down();
              serverDownUntil = Date.now() + 300 + random() * 1200;
            }
            break;
          case 'kill-subtask':
            if (host.subtaskPid) {
              try {
                process.kill(host.subtaskPid, 'SIGKILL');
              } catch {
                // Already gone (being restarted).
              }
            }
            break;
          case 'kill-host':
            await host.kill();
            await host.start();
            break;
        }
      }

      // ---- workload ----------------------------------------------------------------------------
      const dice = random();
      if (dice < 0.45) {
        count(actions, 'append');
        fs.appendFileSync(data('log-a.csv'), `${step},${Date.now()},${random().toFixed(6)}\n`);
        host.send({ type: 'notify', file: data('log-a.csv') });
      } else if (dice < 0.52) {
        count(actions, 'burst');
        for (let i = 0; i < 5 + Math.floor(random() * 25); i += 1) {
          fs.appendFileSync(data('log-b.csv'), `${step}.${i},${'b'.repeat(Math.floor(random() * 80))}\n`);
          host.send({ type: 'notify', file: data('log-b.csv') });
        }
      } else if (dice < 0.62) {
        count(actions, 'rewrite');
        // In place (truncate + write), as many loggers do: a snapshot may catch it half-written,
        // and must then be taken again.
        fs.writeFileSync(data('state.json'), JSON.stringify({ step, pad: randomBytes(Math.floor(random() * 200_000)).toString('base64') }));
        host.send({ type: 'notify', file: data('state.json') });
      } else if (dice < 0.74) {
        count(actions, 'drop');
        const name = `d-${String(dropSeq++).padStart(4, '0')}.bin`;
        const content = randomBytes(random() < 0.1 ? 500_000 + Math.floor(random() * 1_500_000) : Math.floor(random() * 20_000));
        const file = ws.path('drop', random() < 0.3 ? `sub/${name}` : name);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, content);
        dropVersions.set(path.relative(ws.path('drop'), file), new Set([sha(content)]));
      } else if (dice < 0.78) {
        const candidates = [...dropVersions.keys()].filter((name) => !deleted.has(name));
        if (candidates.length) {
          count(actions, 'delete-drop');
          const name = pick(candidates);
          fs.rmSync(ws.path('drop', name), { force: true });
          deleted.add(name);
        }
      } else if (dice < 0.9) {
        count(actions, 'grow-drop');
        fs.appendFileSync(ws.path('drop-grow', 'stream.log'), `${step},${'g'.repeat(Math.floor(random() * 500))}\n`);
      } else if (dice < 0.905) {
        count(actions, 'rotate');
        fs.writeFileSync(data('log-a.csv'), `rotated at ${step}\n`);
        host.send({ type: 'notify', file: data('log-a.csv') });
      }
      await sleep(3);
    }

    // ---- settle: heal everything, then wait for the server to hold exactly our files ------------
    const settleStarted = Date.now();
    if (serverDownUntil) await target.up();
    target.proxy?.cutUpstreamAfter(null);
    target.proxy?.shape({ latencyMs: 0, upBytesPerSecond: null, downBytesPerSecond: null });
    if (silentUntil) {
      target.proxy?.blackhole(false);
      linkEvents.push({ fault: 'silent-drop', at: Date.now() });
    }
    host.send({ type: 'flush' });
    const expected = () => expectedFiles(ws, deleted);
    try {
      await waitFor(
        () => {
          host.send({ type: 'flush' });
          return expected().every(({ local, remote }) => sameFile(local, target.storedPath(remote))) && spoolDrained(spoolDir);
        },
        `${target.name}: every file byte-identical on the server and the spool drained (seed ${options.seed})`,
        options.settleMs ?? 60_000,
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${diagnose(ws, spoolDir, expected(), target)}`);
    }
    const settleMs = Date.now() - settleStarted;
    await host.stop();

    // ---- verify what else is on the server ------------------------------------------------------
    const files = expected();
    const accounted = new Set(files.map((file) => file.remote));
    let remoteTempFilesLeft = 0;
    for (const remote of listFiles(target.storedRoot())) {
      const base = path.posix.basename(remote);
      if (base.endsWith('.pushtask-tmp')) {
        remoteTempFilesLeft += 1;
        continue;
      }
      if (accounted.has(remote) || base.endsWith('.heartbeat') || remote.startsWith('.pushtask/')) continue; // heartbeats and status files
      const versions = dropVersions.get(remote);
      if (!versions || !deleted.has(remote)) throw new Error(`${target.name}: unexpected file on the server: ${remote} (seed ${options.seed})`);
      const stored = sha(fs.readFileSync(target.storedPath(remote)));
      if (!versions.has(stored)) throw new Error(`${target.name}: ${remote} on the server is not a version we wrote (seed ${options.seed})`);
    }

    return {
      target: target.name,
      seed: options.seed,
      steps: options.steps,
      actions,
      faults,
      spoolFullErrors: countInLog(ws.path('logs', 'pushtask-subtask.log'), /ENOSPC/g),
      spoolOnTmpfs,
      filesChecked: files.length,
      bytesChecked: files.reduce((sum, file) => sum + fs.statSync(file.local).size, 0),
      deletedDropFiles: deleted.size,
      uploads: uploadsBefore(),
      hostLoop: loopFigures(host.loop),
      baselineLoop: loopFigures(baseline.loop()),
      remoteTempFilesLeft,
      settleMs,
      recoveries: recoveriesOf(linkEvents, faultTimes, uploadTimes(ws.path('logs', 'pushtask-subtask.log'))),
    };
  } finally {
    await host.kill().catch(() => undefined);
    baseline.child.kill('SIGKILL');
    if (serverDownUntil) await target.up().catch(() => undefined);
    if (spoolOnTmpfs) {
      await sleep(200); // the subtask of a killed host may still be closing files
      try {
        execFileSync('umount', ['-l', spoolDir], { stdio: 'ignore' });
      } catch {
        // Left mounted: the folder goes with the workspace below as far as it can.
      }
    }
    if (!process.env.PUSHTASK_CHAOS_KEEP) ws.cleanup();
    else console.log(`[chaos ${target.name}] kept ${ws.dir}`);
  }
}

/** Times of the subtask's `Uploaded` lines (JSON log), in order. */
function uploadTimes(logFile: string): number[] {
  if (!fs.existsSync(logFile)) return [];
  const times: number[] = [];
  for (const line of fs.readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('"Uploaded ')) continue;
    try {
      times.push((JSON.parse(line) as { time: number }).time);
    } catch {
      // a torn line
    }
  }
  return times.sort((a, b) => a - b);
}

/** For each link fault: ms to the next upload; overlapped when another fault struck before it. */
export function recoveriesOf(events: Array<{ fault: Recovery['fault']; at: number }>, faultTimes: number[], uploads: number[]): Recovery[] {
  return events.map(({ fault, at }) => {
    const next = uploads.find((time) => time >= at);
    const ms = next === undefined ? null : next - at;
    const until = next ?? Number.POSITIVE_INFINITY;
    const overlapped = faultTimes.some((time) => time > at && time < until);
    return { fault, ms, overlapped };
  });
}

/** Local files and where each must be on the server (remote paths below remoteDir). */
function expectedFiles(ws: Workspace, deleted: Set<string>): { local: string; remote: string }[] {
  const files = ['log-a.csv', 'log-b.csv', 'state.json'].map((name) => ({ local: ws.path('data', name), remote: name }));
  files.push({ local: ws.path('drop-grow', 'stream.log'), remote: 'stream.log' });
  for (const remote of listFiles(ws.path('drop'))) {
    if (!deleted.has(remote) && !remote.endsWith('.notify')) files.push({ local: ws.path('drop', remote), remote });
  }
  return files;
}

/** What differs, what the spool holds and the end of the subtask's log: for the person replaying a seed. */
function diagnose(ws: Workspace, spoolDir: string, files: { local: string; remote: string }[], target: Target): string {
  const size = (file: string) => (fs.existsSync(file) ? fs.statSync(file).size : 'missing');
  const differing = files
    .filter(({ local, remote }) => !sameFile(local, target.storedPath(remote)))
    .map(({ local, remote }) => `  ${remote}: local ${size(local)} B, server ${size(target.storedPath(remote))} B`);
  const spool = fs.readdirSync(spoolDir).filter((name) => name.endsWith('.snap') || name.endsWith('.json'));
  let log = '';
  try {
    log = fs.readFileSync(ws.path('logs', 'pushtask-subtask.log'), 'utf8').trim().split('\n').slice(-25).map((line) => {
      try {
        const record = JSON.parse(line) as { time: number; msg: string };
        return `  ${new Date(record.time).toISOString().slice(11, 23)} ${record.msg}`;
      } catch {
        return `  ${line}`;
      }
    }).join('\n');
  } catch {
    log = '  (no subtask log)';
  }
  return `differing files:\n${differing.join('\n') || '  none'}\nspool: ${spool.join(' ')}\nsubtask log (last 25 lines):\n${log}`;
}

function listFiles(root: string): string[] {
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'));
}

function sameFile(a: string, b: string): boolean {
  try {
    const left = fs.readFileSync(a);
    const right = fs.readFileSync(b);
    return left.equals(right);
  } catch {
    return false;
  }
}

function spoolDrained(spoolDir: string): boolean {
  return !fs.readdirSync(spoolDir).some((name) => name.endsWith('.snap'));
}

function countInLog(file: string, pattern: RegExp): number {
  try {
    return fs.readFileSync(file, 'utf8').match(pattern)?.length ?? 0;
  } catch {
    return 0;
  }
}
