/**
 * A small data logger that embeds pushtask the way an application would: it appends a CSV row at
 * a steady rate, notifies pushtask after each write, and stops cleanly on Ctrl-C or SIGTERM.
 *
 *   npx tsx demo/logger.ts [--rate 10] [--rows 300] [--dir ./demo-run/logger]
 *
 * Rows go to <dir>/data.csv and are delivered to <dir>/remote/data.csv.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { TaskMaster, defineConfig } from '../src/index.js'; // in your app: from 'pushtask'

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '10' }, // rows per second (one timer tick per row, so at most ~1000)
    rows: { type: 'string' }, // stop after this many rows; default: run until Ctrl-C
    dir: { type: 'string', default: 'demo-run/logger' },
  },
});
const rate = Number(values.rate);
const maxRows = values.rows === undefined ? Infinity : Number(values.rows);
if (!(rate > 0) || !(maxRows > 0)) throw new Error('--rate and --rows must be positive numbers');

const dir = path.resolve(values.dir);
const file = path.join(dir, 'data.csv');
fs.mkdirSync(dir, { recursive: true });
if (!fs.existsSync(file)) fs.writeFileSync(file, 'timestamp,seq,value\n');

// #region embedding (README's example is generated from this region: npm run docs)
const master = new TaskMaster(
  defineConfig({
    watch: [{ file: 'data.csv', burstMode: true }], // many small writes: burst mode batches them
    transport: { type: 'local', dir: 'remote' },
  }),
  { cwd: dir }, // relative paths in the config are relative to this folder
);

master.on('upload-failed', (event) => console.error(`upload failed (will retry): ${event.error.message}`));

await master.start();

let seq = 0;
const timer = setInterval(() => {
  seq += 1;
  fs.appendFileSync(file, `${new Date().toISOString()},${seq},${Math.sin(seq / 10).toFixed(4)}\n`);
  master.notify(file); // cheap: touches a sidecar file, never waits for the network
  if (seq >= maxRows) void shutdown();
}, 1000 / rate);

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  // Graceful: rows held back by burst mode are passed on and the queue is delivered (bounded by
  // gracefulTimeoutMs); anything not delivered stays in the spool for the next start.
  await master.stop({ forceKill: false });
  console.log(`stopped after ${seq} rows`);
  // Nothing is left running: the process exits by itself, with code 0.
}

process.once('SIGINT', () => void shutdown());
process.once('SIGTERM', () => void shutdown());
// #endregion
