/**
 * S3 throughput against Ceph's RADOS Gateway (a one-host cluster of test/helpers/ceph.ts, started
 * for the run), pushtask's s3 transport next to `rclone copy` (Debian's rclone, s3 backend,
 * `provider = Ceph`, the same endpoint and keys, its defaults: 4 transfers, 5 MiB chunks × 4,
 * multipart above 200 MiB), in the same run:
 *   (a) one 1 GiB file (as in bench/sftp.ts: a random MiB repeated, each MiB stamped): MiB/s,
 *       pushtask timed from notify to `uploaded` (its spool snapshot included) and, as a second
 *       row, the transport alone uploading the fixture;
 *   (b) 1,000 files of 100 KiB: files/s, pushtask as a drop folder holding them at start() (timed
 *       from start()), and moved at once into the drop folder of a running agent (stableMs 200,
 *       timed from the move, as bench/sftp.ts's live drop); and the transport alone, 4 lanes
 *       taking the files straight from their folder as rclone does. With the CPU per file of each
 *       tool and of Ceph's daemons: here they share two cores, so CPU per file sets the pace;
 *   (c) append mode through a TCP proxy: bytes on the wire for N appends to a 6 MiB object, vs the
 *       bytes appended;
 *   (d) 200 files of 100 KiB, and 200 of 8 KiB, over a field link (WAN_LINK through
 *       test/helpers/tcpProxy.ts: 30 ms each way, 2 MiB/s each way shared by all connections),
 *       rclone and pushtask (4 transfers each) through the same proxy: files/s and bytes on the
 *       wire per byte of payload. On loopback the tools' CPU per file decides (next to Ceph on the
 *       same two cores); on a link the round trips and the bytes do.
 * Each run writes under its own key prefix, which is checked (keys, sizes, sha256) before its time
 * counts and then deleted (and garbage-collected: memstore keeps objects in RAM). Keys reach rclone
 * through environment variables, never its argv. Both tools pay for their start and login.
 * --quick: 100 MiB, 200 files, 1 round (smoke only). Needs root and Debian's Ceph packages + rclone.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, type S3Client, type _Object } from '@aws-sdk/client-s3';
import type { TaskMaster as TaskMasterClass } from '../src/index.js';
import { cephUnavailable, startCeph, type CephCluster } from '../test/helpers/ceph.js';
import { createTestBucket, testS3Client } from '../test/helpers/s3.js';
import { startTcpProxy, type LinkShape } from '../test/helpers/tcpProxy.js';
import { childrenCpuSeconds, cpuSecondsOf, fmt, goalAtLeastRow, loadAverage, makeRandomFiles, makeStampedFile, runTool, sha256File, loadTaskMaster, nextUpload, summarize, tempDir, timeBigFileNotified, timeDropFolder, timeTransportAlone, timeTransportFiles, type Bench, type Row, type Timing } from './lib.js';

const MiB = 1024 * 1024;
const SMALL_BYTES = 100 * 1024;
/** (d): a cellular hot-spot's link as it often is (60 ms round trip, 2 MiB/s ≈ 16.8 Mbit/s each way). */
const WAN_LINK: LinkShape = { latencyMs: 30, upBytesPerSecond: 2 * MiB, downBytesPerSecond: 2 * MiB };
const LINK_FILES = 200;

interface Fixture {
  root: string;
  ceph: CephCluster;
  s3: S3Client;
  bucket: string;
  TaskMaster: typeof TaskMasterClass;
  bigFile: string;
  bigSize: number;
  bigSha: string;
  smallDir: string;
  smallFiles: Map<string, string>;
}


async function listPrefix(s3: S3Client, bucket: string, prefix: string): Promise<_Object[]> {
  const out: _Object[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
    out.push(...(page.Contents ?? []));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/** Throws unless the prefix holds exactly the expected objects with the expected content. */
async function verify(fx: Fixture, prefix: string, expected: Map<string, { size: number; sha: string }>): Promise<void> {
  const objects = await listPrefix(fx.s3, fx.bucket, prefix);
  const found = new Map(objects.map((object) => [object.Key!.slice(prefix.length), object.Size ?? -1]));
  const missing = [...expected.keys()].filter((name) => !found.has(name));
  const extra = [...found.keys()].filter((name) => !expected.has(name));
  if (missing.length || extra.length) throw new Error(`prefix differs: ${missing.length} missing (${missing.slice(0, 3).join(', ')}), ${extra.length} unexpected (${extra.slice(0, 3).join(', ')})`);
  for (const [name, { size, sha }] of expected) {
    if (found.get(name) !== size) throw new Error(`${name}: ${found.get(name)} bytes stored, ${size} expected`);
    const answer = await fx.s3.send(new GetObjectCommand({ Bucket: fx.bucket, Key: `${prefix}${name}` }));
    const hash = createHash('sha256');
    for await (const chunk of answer.Body as AsyncIterable<Buffer>) hash.update(chunk);
    if (hash.digest('hex') !== sha) throw new Error(`${name}: sha256 differs`);
  }
}

/** Deletes a prefix and has radosgw free the RAM of its objects now. */
async function removePrefix(fx: Fixture, prefix: string): Promise<void> {
  for (;;) {
    const objects = await listPrefix(fx.s3, fx.bucket, prefix);
    if (!objects.length) break;
    for (let i = 0; i < objects.length; i += 1000) {
      await fx.s3.send(new DeleteObjectsCommand({ Bucket: fx.bucket, Delete: { Objects: objects.slice(i, i + 1000).map((o) => ({ Key: o.Key! })), Quiet: true } }));
    }
  }
  await fx.ceph.admin(['gc', 'process', '--include-all']).catch(() => '');
}

/** `rclone copy` with its defaults; the remote is defined in the environment (keys never on argv). */
async function rcloneCopy(fx: Fixture, source: string, prefix: string, endpoint = fx.ceph.endpoint): Promise<Timing> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    RCLONE_CONFIG: '/dev/null',
    RCLONE_CONFIG_CEPH_TYPE: 's3',
    RCLONE_CONFIG_CEPH_PROVIDER: 'Ceph',
    RCLONE_CONFIG_CEPH_ENDPOINT: endpoint,
    RCLONE_CONFIG_CEPH_ACCESS_KEY_ID: fx.ceph.accessKeyId,
    RCLONE_CONFIG_CEPH_SECRET_ACCESS_KEY: fx.ceph.secretAccessKey,
  };
  // rclone's AWS SDK fails on a custom CA bundle with its own HTTP transport (the endpoint is
  // plain HTTP anyway): "LoadCustomCABundleError: … unsupported transport".
  delete env.AWS_CA_BUNDLE;
  const t0 = process.hrtime.bigint();
  const cpu0 = childrenCpuSeconds();
  await runTool('rclone', ['copy', '-q', source, `ceph:${fx.bucket}/${prefix.replace(/\/$/, '')}`], env);
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, clientCpuSeconds: childrenCpuSeconds() - cpu0 };
}

function transportConfig(fx: Fixture, prefix: string, endpoint = fx.ceph.endpoint) {
  return {
    type: 's3' as const,
    bucket: fx.bucket,
    remoteDir: prefix.replace(/\/$/, ''),
    endpoint,
    accessKeyId: fx.ceph.accessKeyId,
    secretAccessKey: fx.ceph.secretAccessKey,
  };
}

function masterConfig(fx: Fixture, work: string, prefix: string, endpoint?: string) {
  return { transport: transportConfig(fx, prefix, endpoint), spoolDir: path.join(work, 'spool'), log: { dir: path.join(work, 'logs'), console: false } };
}

interface Measurement {
  label: string;
  run: (prefix: string) => Promise<Timing>;
  expected: () => Map<string, { size: number; sha: string }>;
  results: CpuTiming[];
  invalid: string[];
}

/**
 * A run with the CPU both sides used: on one machine the S3 server (Ceph's daemons) and the tool
 * share the cores, so a tool's CPU per file decides its pace as much as its round trips do.
 */
interface CpuTiming extends Timing {
  serverCpuSeconds: number;
  /** (d) only: bytes on the wire per byte of payload (LinkTiming). */
  wire?: number;
}

async function measureRounds(measurements: Measurement[], rounds: number, fx: Fixture, describe: (t: Timing) => string): Promise<void> {
  let serial = 0;
  for (let round = 1; round <= rounds; round += 1) {
    const shift = (round - 1) % measurements.length;
    for (const m of [...measurements.slice(shift), ...measurements.slice(0, shift)]) {
      const prefix = `${String((serial += 1)).padStart(3, '0')}-${m.label.replace(/\W+/g, '-')}/`;
      execFileSync('sync');
      const load = loadAverage().split(' ')[0];
      try {
        const server0 = cpuSecondsOf(fx.ceph.pids());
        const timing = await m.run(prefix);
        const serverCpuSeconds = cpuSecondsOf(fx.ceph.pids()) - server0;
        await verify(fx, prefix, m.expected());
        m.results.push({ ...timing, serverCpuSeconds });
        const cpu = `CPU: ${timing.clientCpuSeconds === undefined ? '' : `tool ${fmt(timing.clientCpuSeconds)} s, `}Ceph ${fmt(serverCpuSeconds)} s`;
        console.log(`    round ${round}  ${m.label.padEnd(22)} ${describe(timing)}  (${timing.notes ? `${timing.notes}; ` : ''}${cpu})  [load ${load}]`);
      } catch (error) {
        m.invalid.push((error as Error).message);
        console.log(`    round ${round}  ${m.label.padEnd(22)} INVALID, not counted: ${(error as Error).message}`);
      } finally {
        await removePrefix(fx, prefix);
      }
    }
  }
}

/** (c) N appends of `chunk` bytes to a 6 MiB object through a proxy that counts the bytes sent. */
async function appendWire(fx: Fixture, appends: number, chunk: number): Promise<{ wire: number; appended: number; perAppendOverhead: number }> {
  const proxy = await startTcpProxy(fx.ceph.port);
  const work = fs.mkdtempSync(path.join(fx.root, 'pushtask-append-'));
  const file = path.join(work, 'data', 'log.csv');
  fs.mkdirSync(path.dirname(file));
  fs.writeFileSync(file, randomBytes(6 * MiB));
  const master = new fx.TaskMaster({ watch: [{ file, mode: 'append' }], ...masterConfig(fx, work, 'append/', `http://127.0.0.1:${proxy.port}`) }, { cwd: work });
  master.on('error', () => undefined);
  try {
    await master.start();
    const first = nextUpload(master, file, 6 * MiB, 120_000);
    master.notify(file);
    if (!(await first)) throw new Error('the first upload did not arrive');
    proxy.resetCounters();
    let appended = 0;
    for (let i = 0; i < appends; i += 1) {
      const data = randomBytes(chunk);
      fs.appendFileSync(file, data);
      appended += chunk;
      const done = nextUpload(master, file, chunk, 120_000);
      master.notify(file);
      if (!(await done)) throw new Error(`append ${i} did not arrive`);
    }
    const wire = proxy.bytesUp;
    await verify(fx, 'append/', new Map([['log.csv', { size: fs.statSync(file).size, sha: await sha256File(file) }]]));
    return { wire, appended, perAppendOverhead: (wire - appended) / appends };
  } finally {
    await master.stop();
    await proxy.close();
    await removePrefix(fx, 'append/');
    fs.rmSync(work, { recursive: true, force: true });
  }
}

const median = (values: number[]) => summarize(values).median;

/** A run over the link, with the bytes both ways per byte of payload. */
type LinkTiming = Timing & { wire: number };

/**
 * (d) `count` new files of `bytes` each through a shaped proxy, rclone and pushtask alike; rows
 * named after the case.
 */
async function overLink(fx: Fixture, count: number, bytes: number, rounds: number): Promise<Row[]> {
  const proxy = await startTcpProxy(fx.ceph.port, '127.0.0.1', WAN_LINK);
  const endpoint = `http://127.0.0.1:${proxy.port}`;
  const dir = fs.mkdtempSync(path.join(fx.root, 'link-files-'));
  const files = makeRandomFiles(dir, count, bytes);
  const linkFx = { ...fx, smallDir: dir, smallFiles: files };
  const payload = count * bytes;
  const counted = (run: (prefix: string) => Promise<Timing>) => async (prefix: string): Promise<LinkTiming> => {
    proxy.resetCounters();
    // The proxy runs in this process, whose CPU timeDropFolder charges to pushtask: not counted here.
    const { clientCpuSeconds: _withProxy, ...timing } = await run(prefix);
    const wire = (proxy.bytesUp + proxy.bytesDown) / payload;
    return { ...timing, wire, notes: `${timing.notes ? `${timing.notes}; ` : ''}wire ${fmt(wire, 3)}× payload` };
  };
  const config = (prefix: string) => (work: string) => {
    const base = masterConfig(fx, work, prefix, endpoint);
    return { ...base, transport: { ...base.transport, transfers: 4 } };
  };
  const expected = () => new Map([...files].map(([name, sha]) => [name, { size: bytes, sha }]));
  const measurement = (label: string, run: (prefix: string) => Promise<Timing>): Measurement => ({ label, run: counted(run), expected, results: [], invalid: [] });
  const [rclone, backlog, live] = [
    measurement('rclone copy', (prefix) => rcloneCopy(fx, dir, prefix, endpoint)),
    measurement('pushtask transfers 4', (prefix) => timeDropFolder(linkFx, config(prefix), { atStart: true, stableMs: 0 })),
    measurement('pushtask live drop stableMs 200', (prefix) => timeDropFolder(linkFx, config(prefix), { atStart: false, stableMs: 200 })),
  ];
  try {
    await measureRounds([rclone, backlog, live], rounds, fx, (t) => `${fmt(t.seconds)} s  ${fmt(count / t.seconds)} files/s`);
  } finally {
    await proxy.close().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const bench = `s3/${count}x${bytes / 1024}KiB over ${2 * WAN_LINK.latencyMs!} ms, ${fmt((WAN_LINK.upBytesPerSecond! * 8) / 1e6)} Mbit/s`;
  const rate = (m: Measurement) => median(m.results.map((t) => count / t.seconds));
  const wire = (m: Measurement) => median(m.results.map((t) => t.wire!));
  return [
    { bench, metric: 'rclone copy', value: rate(rclone), unit: 'files/s' },
    { bench, metric: 'pushtask transfers 4', value: rate(backlog), unit: 'files/s' },
    { bench, metric: 'pushtask / rclone', value: rate(backlog) / rate(rclone), unit: '×' },
    { bench, metric: 'pushtask live drop stableMs 200', value: rate(live), unit: 'files/s' },
    { bench, metric: 'live drop / rclone', value: rate(live) / rate(rclone), unit: '×' },
    { bench, metric: 'rclone: wire bytes / payload', value: wire(rclone), unit: '×' },
    { bench, metric: 'pushtask: wire bytes / payload', value: wire(backlog), unit: '×' },
    ...[rclone, backlog, live].filter((m) => m.invalid.length).map((m) => ({ bench: m.results.length ? bench : `${bench} (NO VALID RUN)`, metric: `${m.label}: invalid runs`, value: m.invalid.length, unit: '' })),
  ];
}

export const s3Bench: Bench = async ({ quick }) => {
  const unavailable = cephUnavailable() ?? (hasRclone() ? null : 'rclone is missing (Debian package rclone)');
  if (unavailable) {
    console.log(`  skipped: ${unavailable}`);
    return [];
  }
  const bigSize = quick ? 100 * MiB : 1024 * MiB;
  const smallCount = quick ? 200 : 1000;
  const rounds = quick ? 1 : 2;
  const temp = tempDir('s3');
  const started = Date.now();
  // Two copies of the big file at most at once (verify, then delete), plus headroom.
  const ceph = await startCeph({ memoryBytes: 4 * 1024 * MiB });
  console.log(`  Ceph cluster up in ${fmt((Date.now() - started) / 1000)} s at ${ceph.endpoint}; ${rcloneVersion()}`);
  const s3 = testS3Client(ceph);
  const rows: Row[] = [];
  try {
    const bigFile = path.join(temp.dir, 'big.bin');
    makeStampedFile(bigFile, bigSize);
    const smallDir = path.join(temp.dir, 'small');
    const smallFiles = makeRandomFiles(smallDir, smallCount, SMALL_BYTES);
    const fx: Fixture = { root: temp.dir, ceph, s3, bucket: await createTestBucket(s3), TaskMaster: await loadTaskMaster('dist'), bigFile, bigSize, bigSha: await sha256File(bigFile), smallDir, smallFiles };
    const bigName = path.basename(bigFile);
    const bigExpected = () => new Map([[bigName, { size: bigSize, sha: fx.bigSha }]]);
    const dropConfig = (prefix: string) => (work: string) => {
      const config = masterConfig(fx, work, prefix);
      return { ...config, transport: { ...config.transport, transfers: 4 } };
    };
    const smallExpected = () => new Map([...smallFiles].map(([name, sha]) => [name, { size: SMALL_BYTES, sha }]));

    console.log(`  (a) one ${bigSize / MiB} MiB file, ${rounds} round(s)`);
    const big: Measurement[] = [
      { label: 'rclone copy', run: (prefix) => rcloneCopy(fx, bigFile, prefix), expected: bigExpected, results: [], invalid: [] },
      { label: 'pushtask', run: (prefix) => timeBigFileNotified(fx, (work) => masterConfig(fx, work, prefix)), expected: bigExpected, results: [], invalid: [] },
      { label: 'pushtask transport', run: (prefix) => timeTransportAlone(fx, (work) => masterConfig(fx, work, prefix)), expected: bigExpected, results: [], invalid: [] },
    ];
    const mibps = (t: Timing) => bigSize / MiB / t.seconds;
    await measureRounds(big, rounds, fx, (t) => `${fmt(t.seconds)} s  ${fmt(mibps(t))} MiB/s`);

    console.log(`  (b) ${smallCount} files of ${SMALL_BYTES / 1024} KiB, ${rounds} round(s)`);
    const small: Measurement[] = [
      { label: 'rclone copy', run: (prefix) => rcloneCopy(fx, smallDir, prefix), expected: smallExpected, results: [], invalid: [] },
      { label: 'pushtask transfers 4', run: (prefix) => timeDropFolder(fx, dropConfig(prefix), { atStart: true, stableMs: 0 }), expected: smallExpected, results: [], invalid: [] },
      { label: 'pushtask live drop stableMs 200', run: (prefix) => timeDropFolder(fx, dropConfig(prefix), { atStart: false, stableMs: 200 }), expected: smallExpected, results: [], invalid: [] },
      { label: 'pushtask transport ×4', run: (prefix) => timeTransportFiles(fx, (work) => masterConfig(fx, work, prefix), 4), expected: smallExpected, results: [], invalid: [] },
    ];
    await measureRounds(small, rounds, fx, (t) => `${fmt(t.seconds)} s  ${fmt(smallCount / t.seconds)} files/s`);

    const appends = quick ? 5 : 20;
    const chunk = 256 * 1024;
    console.log(`  (c) append mode: ${appends} appends of ${chunk / 1024} KiB to a 6 MiB object, through a counting proxy`);
    const append = await appendWire(fx, appends, chunk);
    console.log(`    ${append.wire} bytes on the wire for ${append.appended} appended: ${fmt(append.wire / append.appended, 4)}×, ${fmt(append.perAppendOverhead)} bytes of requests per append`);

    const linkRows: Row[] = [];
    for (const bytes of [SMALL_BYTES, 8 * 1024]) {
      const count = quick ? 50 : LINK_FILES;
      console.log(`  (d) ${count} files of ${bytes / 1024} KiB over a link of ${WAN_LINK.latencyMs} ms each way, ${WAN_LINK.upBytesPerSecond! / MiB} MiB/s each way, ${rounds} round(s)`);
      linkRows.push(...(await overLink(fx, count, bytes, rounds)));
    }

    const [rcloneBig, pushBig, transportBig] = big as [Measurement, Measurement, Measurement];
    const bigMedian = (m: Measurement) => median(m.results.map(mibps));
    const caseA = `s3/${bigSize / MiB}MiB`;
    rows.push(
      { bench: caseA, metric: 'rclone copy', value: bigMedian(rcloneBig), unit: 'MiB/s' },
      { bench: caseA, metric: 'pushtask notify→uploaded', value: bigMedian(pushBig), unit: 'MiB/s' },
      { bench: caseA, metric: 'pushtask upload only', value: median(pushBig.results.map((t) => bigSize / MiB / t.uploadSeconds!)), unit: 'MiB/s' },
      { bench: caseA, metric: 'pushtask transport', value: bigMedian(transportBig), unit: 'MiB/s' },
      goalAtLeastRow(caseA, 'pushtask / rclone', bigMedian(pushBig) / bigMedian(rcloneBig), '×', 1),
      { bench: caseA, metric: 'pushtask transport / rclone', value: bigMedian(transportBig) / bigMedian(rcloneBig), unit: '×' },
    );
    const caseB = `s3/${smallCount}x100KiB`;
    const filesPerSec = (m: Measurement) => median(m.results.map((t) => smallCount / t.seconds));
    const [rcloneSmall, pushSmall, pushLive, transportSmall] = small as [Measurement, Measurement, Measurement, Measurement];
    const msPerFile = (m: Measurement, side: (t: CpuTiming) => number | undefined) => median(m.results.map((t) => ((side(t) ?? Number.NaN) * 1000) / smallCount));
    rows.push(
      { bench: caseB, metric: 'rclone copy', value: filesPerSec(rcloneSmall), unit: 'files/s' },
      { bench: caseB, metric: 'pushtask transfers 4', value: filesPerSec(pushSmall), unit: 'files/s' },
      goalAtLeastRow(caseB, 'pushtask / rclone', filesPerSec(pushSmall) / filesPerSec(rcloneSmall), '×', 1),
      { bench: caseB, metric: 'pushtask live drop stableMs 200', value: filesPerSec(pushLive), unit: 'files/s' },
      { bench: caseB, metric: 'live drop / rclone', value: filesPerSec(pushLive) / filesPerSec(rcloneSmall), unit: '×' },
      { bench: caseB, metric: 'pushtask transport ×4 (no agent)', value: filesPerSec(transportSmall), unit: 'files/s' },
      { bench: caseB, metric: 'transport ×4 / rclone', value: filesPerSec(transportSmall) / filesPerSec(rcloneSmall), unit: '×' },
      ...[rcloneSmall, pushSmall, transportSmall].map((m) => ({ bench: caseB, metric: `CPU per file: ${m.label}`, value: msPerFile(m, (t) => t.clientCpuSeconds), unit: 'ms' })),
      { bench: caseB, metric: 'CPU per file: Ceph, serving rclone', value: msPerFile(rcloneSmall, (t) => t.serverCpuSeconds), unit: 'ms' },
      { bench: caseB, metric: 'CPU per file: Ceph, serving pushtask', value: msPerFile(pushSmall, (t) => t.serverCpuSeconds), unit: 'ms' },
    );
    const caseC = `s3/append ${appends}×${chunk / 1024}KiB`;
    rows.push(
      { bench: caseC, metric: 'wire bytes / appended bytes', value: append.wire / append.appended, unit: '×' },
      { bench: caseC, metric: 'request bytes per append', value: append.perAppendOverhead, unit: 'B' },
    );
    rows.push(...linkRows);
    for (const m of [...big, ...small]) {
      if (m.invalid.length) rows.push({ bench: m.results.length ? 's3' : 's3 (NO VALID RUN)', metric: `${m.label}: invalid runs`, value: m.invalid.length, unit: '' });
    }
  } finally {
    s3.destroy();
    await ceph.stop();
    temp.cleanup();
  }
  return rows;
};

function hasRclone(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v rclone'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

function rcloneVersion(): string {
  try {
    return execFileSync('rclone', ['version'], { encoding: 'utf8' }).split('\n')[0]!.trim();
  } catch {
    return 'rclone: unknown version';
  }
}
