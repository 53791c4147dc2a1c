/**
 * Append mode vs whole-file mode over SFTP on loopback (issue 4): a large data file receives
 * 1 KiB appends, each followed by notify() and waited for until delivered. Bytes from client to
 * server are counted at a TCP proxy in front of the embedded SFTP server; payload bytes are the
 * `uploaded` events' sum. The same appends to a small file show whether the per-notify time grows
 * with the file's size.
 */
import fs from 'node:fs';
import path from 'node:path';
import { startEmbeddedSftpServer } from '../src/embedded/sftpServer.js';
import { startTcpProxy } from '../test/helpers/tcpProxy.js';
import { fmt, goalRow, loadTaskMaster, nextUpload, summarize, tempDir, type Bench, type Row } from './lib.js';

const APPEND_BYTES = 1024;
const MiB = 1024 * 1024;

interface CaseResult {
  perNotifyMs: number[];
  wallMs: number;
  wireBytesUp: number;
  payloadBytes: number;
  appendedBytes: number;
}

/** A text file of `bytes` bytes, written in 1 MiB blocks of CSV-like lines. */
function writeDataFile(file: string, bytes: number): void {
  const line = '2026-11-23T08:00:00.000Z,12345,0.5403,ok\n';
  const block = Buffer.from(line.repeat(Math.ceil(MiB / line.length))).subarray(0, MiB);
  const fd = fs.openSync(file, 'w');
  try {
    for (let written = 0; written < bytes; written += block.length) fs.writeSync(fd, block, 0, Math.min(block.length, bytes - written));
  } finally {
    fs.closeSync(fd);
  }
}

async function runCase(mode: 'append' | 'replace', fileBytes: number, appends: number): Promise<CaseResult> {
  const temp = tempDir(`append-bench-${mode}`);
  const root = path.join(temp.dir, 'server');
  fs.mkdirSync(root);
  const server = await startEmbeddedSftpServer({ root, username: 'bench', password: 'bench' });
  const proxy = await startTcpProxy(server.port);
  const file = path.join(temp.dir, 'data.csv');
  writeDataFile(file, fileBytes);
  const TaskMaster = await loadTaskMaster('src');
  const master = new TaskMaster(
    {
      watch: [{ file, mode }],
      transport: { type: 'sftp', host: '127.0.0.1', port: proxy.port, username: 'bench', password: 'bench', remoteDir: 'in', hostKey: server.hostKeyFingerprint, transfers: 1 },
      log: { dir: path.join(temp.dir, 'logs'), console: false },
    },
    { cwd: temp.dir },
  );
  master.on('error', () => undefined);
  try {
    const initial = nextUpload(master, file, 0, 120_000);
    await master.start();
    if (!(await initial)) throw new Error('the initial upload did not arrive within 120 s');
    proxy.resetCounters();
    let payloadBytes = 0;
    master.on('uploaded', (event) => {
      payloadBytes += event.bytes;
    });
    const appendix = Buffer.alloc(APPEND_BYTES, 'a');
    appendix[APPEND_BYTES - 1] = 10;
    const perNotifyMs: number[] = [];
    const started = performance.now();
    for (let i = 0; i < appends; i += 1) {
      fs.appendFileSync(file, appendix);
      const delivered = nextUpload(master, file, 0, 120_000);
      const t0 = performance.now();
      master.notify(file);
      if (!(await delivered)) throw new Error(`append ${i} was not delivered within 120 s`);
      perNotifyMs.push(performance.now() - t0);
    }
    const wallMs = performance.now() - started;
    const remote = fs.readFileSync(path.join(root, 'in', 'data.csv'));
    if (!remote.equals(fs.readFileSync(file))) throw new Error(`${mode}: the remote file differs from the local one`);
    return { perNotifyMs, wallMs, wireBytesUp: proxy.bytesUp, payloadBytes, appendedBytes: appends * APPEND_BYTES };
  } finally {
    await master.stop();
    await proxy.close();
    await server.close();
    temp.cleanup();
  }
}

export const appendBench: Bench = async ({ quick }) => {
  const bigBytes = (quick ? 10 : 100) * MiB;
  const smallBytes = 1 * MiB;
  const appends = quick ? 100 : 1000;
  const wholeAppends = quick ? 3 : 10;
  const rows: Row[] = [];
  const bigLabel = `${bigBytes / MiB} MiB`;

  const big = await runCase('append', bigBytes, appends);
  const small = await runCase('append', smallBytes, appends);
  const whole = await runCase('replace', bigBytes, wholeAppends);

  const bigMs = summarize(big.perNotifyMs);
  const smallMs = summarize(small.perNotifyMs);
  const wholeMs = summarize(whole.perNotifyMs);
  const overheadPerAppend = (big.wireBytesUp - big.appendedBytes) / appends;
  console.log(`  append mode, ${bigLabel} file, ${appends} × ${APPEND_BYTES} B, each delivered before the next:`);
  console.log(`    appended ${big.appendedBytes} B; payload sent ${big.payloadBytes} B; on the wire (client→server) ${big.wireBytesUp} B`);
  console.log(`    protocol overhead ${fmt(overheadPerAppend, 0)} B per append (SSH framing, stat/open/write/fsetstat/close/stat requests, keepalives)`);
  console.log(`    per notify: median ${fmt(bigMs.median)} ms, p90 ${fmt(bigMs.p90)} ms; wall ${fmt(big.wallMs / 1000)} s`);
  console.log(`  append mode, 1 MiB file, same appends: per notify median ${fmt(smallMs.median)} ms, p90 ${fmt(smallMs.p90)} ms`);
  console.log(`  whole-file mode, ${bigLabel} file, ${wholeAppends} appends: per notify median ${fmt(wholeMs.median)} ms; ${fmt(whole.wireBytesUp / wholeAppends / MiB)} MiB on the wire per notify`);
  const wholeWireFor = (whole.wireBytesUp / wholeAppends) * appends;
  const wholeWallFor = (whole.wallMs / wholeAppends) * appends;
  console.log(
    `    → ${appends} appends in whole-file mode ≈ ${fmt(wholeWireFor / MiB, 0)} MiB and ${fmt(wholeWallFor / 1000, 0)} s, ` +
      `vs ${fmt(big.wireBytesUp / MiB)} MiB and ${fmt(big.wallMs / 1000)} s in append mode (${fmt(wholeWireFor / big.wireBytesUp, 0)}× fewer bytes)`,
  );

  rows.push(goalRow('append', 'payload bytes / appended bytes', big.payloadBytes / big.appendedBytes, '×', 1.01));
  rows.push({ bench: 'append', metric: 'wire bytes per 1 KiB append (incl. protocol)', value: big.wireBytesUp / appends, unit: 'B' });
  rows.push({ bench: 'append', metric: `per notify, ${bigLabel} file (median)`, value: bigMs.median, unit: 'ms' });
  rows.push({ bench: 'append', metric: 'per notify, 1 MiB file (median)', value: smallMs.median, unit: 'ms' });
  rows.push(goalRow('append', `per-notify median ${bigLabel} / 1 MiB`, bigMs.median / smallMs.median, '×', 1.5));
  rows.push({ bench: 'append', metric: `whole-file mode per notify, ${bigLabel} (median)`, value: wholeMs.median, unit: 'ms' });
  rows.push({ bench: 'append', metric: 'wire bytes, whole-file / append mode', value: wholeWireFor / big.wireBytesUp, unit: '×' });
  return rows;
};
