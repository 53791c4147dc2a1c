/**
 * Runs the benchmarks and prints numbers (never pass/fail): `npx tsx bench/run.ts`
 *   --only <name>   run one benchmark (notify, latency, idle, sftp, append, monitor, s3, link, faults); may be repeated or comma-separated
 *   --quick         shorter windows and fewer samples (a smoke run; do not quote its numbers)
 * The summary is also written to bench/results/latest.json.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { appendBench } from './append.js';
import { faultsBench } from './faults.js';
import { idleBench } from './idle.js';
import { latencyBench } from './latency.js';
import { monitorBench } from './monitor.js';
import { linkBench } from './link.js';
import { describeFileSystem, fmt, loadAverage, repoRoot, type Bench, type Row } from './lib.js';
import { notifyBench } from './notify.js';
import { s3Bench } from './s3.js';
import { sftpBench } from './sftp.js';

const benches: Record<string, Bench> = { notify: notifyBench, latency: latencyBench, idle: idleBench, sftp: sftpBench, append: appendBench, monitor: monitorBench, s3: s3Bench, link: linkBench, faults: faultsBench };

function usageError(message: string): never {
  console.error(`bench/run.ts: ${message}`);
  process.exit(2);
}

function parseArgs(argv: string[]): { only: string[]; quick: boolean } {
  const only: string[] = [];
  let quick = false;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]!;
    if (arg === '--quick') quick = true;
    else if (arg === '--only') only.push(...(argv[++i] ?? '').split(','));
    else if (arg.startsWith('--only=')) only.push(...arg.slice('--only='.length).split(','));
    else if (arg === '--help' || arg === '-h') {
      console.log(`usage: npx tsx bench/run.ts [--quick] [--only ${Object.keys(benches).join('|')}]`);
      process.exit(0);
    } else usageError(`unknown argument ${arg} (try --help)`);
  }
  for (const name of only) if (!benches[name]) usageError(`--only ${name}: no such benchmark (${Object.keys(benches).join(', ')})`);
  return { only, quick };
}

function printTable(rows: Row[]): void {
  const cells = rows.map((row) => [row.bench, row.metric, `${fmt(row.value)} ${row.unit}`, row.goal ? `${row.goal} ${row.unit}` : '', row.met === undefined ? '' : row.met ? 'yes' : 'NO']);
  const header = ['bench', 'metric', 'value', 'goal', 'met'];
  const widths = header.map((title, i) => Math.max(title.length, ...cells.map((cell) => cell[i]!.length)));
  const line = (cell: string[]) => cell.map((text, i) => (i === 2 ? text.padStart(widths[i]!) : text.padEnd(widths[i]!))).join('  ').trimEnd();
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const cell of cells) console.log(line(cell));
}

const { only, quick } = parseArgs(process.argv.slice(2));
const selected = only.length ? Object.keys(benches).filter((name) => only.includes(name)) : Object.keys(benches);
function sourceVersion(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: repoRoot, encoding: 'utf8' }).split('\n').filter(Boolean).length;
    return dirty ? `${head} + ${dirty} uncommitted change(s) in src/` : head;
  } catch {
    return 'unknown';
  }
}

const source = sourceVersion();
const machine = `${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}, node ${process.version}, ${os.platform()} ${os.release()}`;
console.log(`pushtask benchmarks${quick ? ' (--quick: smoke run)' : ''}: ${machine}; load average ${loadAverage()}; temp ${os.tmpdir()} (${describeFileSystem(os.tmpdir())}); source ${source}`);

const rows: Row[] = [];
for (const name of selected) {
  console.log(`\n== ${name}`);
  const started = Date.now();
  rows.push(...(await benches[name]!({ quick })));
  console.log(`  (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

console.log(`\n== summary${quick ? ' (--quick)' : ''}; load average now ${loadAverage()}`);
printTable(rows);
const resultsDir = path.join(repoRoot, 'bench', 'results');
fs.mkdirSync(resultsDir, { recursive: true });
const out = path.join(resultsDir, 'latest.json');
fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), quick, machine, source, rows }, null, 2) + '\n');
console.log(`\nwritten to ${path.relative(process.cwd(), out)}`);
