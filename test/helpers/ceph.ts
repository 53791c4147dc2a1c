/**
 * A single-host Ceph cluster with the RADOS Gateway (S3) for interoperability tests and benches
 * of the s3 transport: one monitor, one manager, one OSD on `memstore` (objects live in RAM) and
 * radosgw's beast frontend on 127.0.0.1 at a free port. About 15 s to start, about 450 MB of RAM.
 *
 * Everything lives in one temp folder with its own fsid and cluster name (`pt<hex>`), so it never
 * touches /etc/ceph or another cluster on the machine. cephx is off (`auth … required = none`),
 * which is why radosgw needs `ms mon client mode = crc` (else "failed to fetch mon config").
 * The daemons daemonize themselves and are stopped by the pids in their pid files: a cluster
 * started by one vitest worker can serve the others (see `sharedCeph()`).
 *
 * Prerequisites (see `cephUnavailable()`): Debian's `ceph-mon ceph-osd ceph-mgr radosgw
 * ceph-common uuid-runtime` and root. With CI=true a missing prerequisite is not a reason to skip.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import lockfile from 'proper-lockfile';
import { freePort } from './daemon.js';

const run = promisify(execFile);
const BINARIES = ['/usr/bin/ceph-mon', '/usr/bin/ceph-osd', '/usr/bin/ceph-mgr', '/usr/bin/radosgw', '/usr/bin/radosgw-admin', '/usr/bin/monmaptool', '/usr/bin/ceph'];
const START_TIMEOUT_MS = 90_000;
/** The environment variable through which `cephGlobalSetup` tells workers where the shared cluster lives. */
export const SHARED_CEPH_ENV = 'PUSHTASK_TEST_CEPH_DIR';

export interface CephOptions {
  /** Cap on what the OSD keeps in RAM (`memstore device bytes`). @default 3 GiB */
  memoryBytes?: number;
}

export interface CephCluster {
  /** `http://127.0.0.1:<port>`: radosgw's S3 endpoint. */
  endpoint: string;
  port: number;
  region: 'us-east-1';
  accessKeyId: string;
  secretAccessKey: string;
  /** The cluster's temp folder (config, logs, pid files). */
  dir: string;
  /** The daemons' process ids (monitor, manager, OSD, radosgw): what the bench charges to the server. */
  pids(): number[];
  /** Runs `radosgw-admin` against this cluster; returns stdout. */
  admin(args: string[]): Promise<string>;
  /** radosgw's log so far, for failure messages. */
  log(): string;
  /** Kills every daemon of the cluster and removes its folder. Idempotent. */
  stop(): Promise<void>;
}

/** What a started cluster writes down so another process can use (and stop) it. */
interface ClusterInfo {
  endpoint: string;
  port: number;
  accessKeyId: string;
  secretAccessKey: string;
  dir: string;
  cluster: string;
}

/** Why Ceph cannot run here, or null when it can. */
export function cephUnavailable(): string | null {
  const missing = BINARIES.filter((binary) => !fs.existsSync(binary));
  const reason =
    process.platform !== 'linux'
      ? 'the Ceph tests run on Linux only'
      : missing.length > 0
        ? `${missing.join(', ')} missing (Debian packages: apt-get install -y ceph-mon ceph-osd ceph-mgr radosgw ceph-common uuid-runtime)`
        : process.getuid?.() !== 0
          ? 'the Ceph daemons run as root here (run the tests as root, as CI does)'
          : null;
  // In CI a missing prerequisite must fail the tests, not skip them.
  return process.env.CI === 'true' ? null : reason;
}

function clusterConfig(values: { fsid: string; dir: string; monPort: number; rgwPort: number; memoryBytes: number }): string {
  const { fsid, dir, monPort, rgwPort, memoryBytes } = values;
  return `[global]
fsid = ${fsid}
mon host = v2:127.0.0.1:${monPort}
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
# cephx is off: without crc radosgw cannot fetch its config from the monitor.
ms mon client mode = crc
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon max pg per osd = 2000
mon allow pool delete = true
mon warn on pool no redundancy = false
# The test machine's disk may be fuller than Ceph likes; the monitor's data is tiny.
mon data avail warn = 1
mon data avail crit = 0
osd objectstore = memstore
memstore device bytes = ${memoryBytes}
run dir = ${dir}/run
admin socket = ${dir}/run/$cluster-$name.asok
log file = ${dir}/log/$cluster-$name.log
pid file = ${dir}/run/$cluster-$name.pid
mon data = ${dir}/mon/$cluster-$id
osd data = ${dir}/osd/$cluster-$id
mgr data = ${dir}/mgr/$cluster-$id
keyring = ${dir}/keyring
mgr initial modules =

[client.rgw.gw]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw data = ${dir}/rgw
# Deleted objects (benches delete between rounds) leave RAM soon, not after the default 2 h.
rgw gc obj min wait = 1
rgw gc processor period = 5
`;
}

/** Starts a fresh cluster (mon → mgr + OSD → radosgw → S3 user). */
export async function startCeph(options: CephOptions = {}): Promise<CephCluster> {
  return clusterHandle(await startCluster(options));
}

async function startCluster(options: CephOptions): Promise<ClusterInfo> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-ceph-'));
  const cluster = `pt${randomBytes(4).toString('hex')}`;
  const info: ClusterInfo = {
    endpoint: '',
    port: 0,
    accessKeyId: `PT${randomBytes(8).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(24).toString('base64url'),
    dir,
    cluster,
  };
  try {
    await bootstrap(info, options.memoryBytes ?? 3 * 1024 ** 3);
  } catch (error) {
    const rgwLog = readTail(path.join(dir, 'log', `${cluster}-client.rgw.gw.log`));
    await killDaemons(info);
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`the Ceph test cluster did not start: ${(error as Error).message}\n${rgwLog}`, { cause: error });
  }
  return info;
}

async function bootstrap(info: ClusterInfo, memoryBytes: number): Promise<void> {
  const { dir, cluster } = info;
  for (const sub of ['run', 'log', 'mon', 'mgr', 'osd', 'rgw']) fs.mkdirSync(path.join(dir, sub));
  const monPort = await freePort();
  const rgwPort = await freePort();
  const fsid = randomUUID();
  const conf = path.join(dir, 'ceph.conf');
  fs.writeFileSync(conf, clusterConfig({ fsid, dir, monPort, rgwPort, memoryBytes }));
  const base = ['--cluster', cluster, '-c', conf];
  const ceph = (binary: string, args: string[]) => run(binary, [...base, ...args], { timeout: START_TIMEOUT_MS });

  await run('/usr/bin/monmaptool', ['--create', '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, '--fsid', fsid, path.join(dir, 'monmap')]);
  await ceph('/usr/bin/ceph-mon', ['--mkfs', '-i', 'a', '--monmap', path.join(dir, 'monmap')]);
  await ceph('/usr/bin/ceph-mon', ['-i', 'a']);
  const osdUuid = randomUUID();
  const [, { stdout: osdId }] = await Promise.all([
    ceph('/usr/bin/ceph-mgr', ['-i', 'x']),
    ceph('/usr/bin/ceph', ['osd', 'new', osdUuid]),
  ]);
  const id = osdId.trim();
  fs.mkdirSync(path.join(dir, 'osd', `${cluster}-${id}`));
  await ceph('/usr/bin/ceph-osd', ['-i', id, '--mkfs', '--osd-uuid', osdUuid]);
  await ceph('/usr/bin/ceph-osd', ['-i', id]);
  await ceph('/usr/bin/radosgw', ['-n', 'client.rgw.gw']);
  info.port = rgwPort;
  info.endpoint = `http://127.0.0.1:${rgwPort}`;
  await waitForGateway(info.endpoint);
  await ceph('/usr/bin/radosgw-admin', [
    'user', 'create', '--uid', 'pushtask', '--display-name', 'pushtask tests',
    '--access-key', info.accessKeyId, '--secret-key', info.secretAccessKey,
  ]);
}

async function waitForGateway(endpoint: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    try {
      const response = await fetch(endpoint, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (response.ok) return;
    } catch {
      // Not listening yet: radosgw creates its pools first.
    }
    if (Date.now() > deadline) throw new Error(`radosgw did not answer on ${endpoint} within ${START_TIMEOUT_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function clusterHandle(info: ClusterInfo, stop?: () => Promise<void>): CephCluster {
  const conf = path.join(info.dir, 'ceph.conf');
  let stopped: Promise<void> | undefined;
  return {
    endpoint: info.endpoint,
    port: info.port,
    region: 'us-east-1',
    accessKeyId: info.accessKeyId,
    secretAccessKey: info.secretAccessKey,
    dir: info.dir,
    pids: () => daemonPids(info),
    admin: async (args) => (await run('/usr/bin/radosgw-admin', ['--cluster', info.cluster, '-c', conf, ...args], { timeout: 60_000, maxBuffer: 64 * 1024 ** 2 })).stdout,
    log: () => readTail(path.join(info.dir, 'log', `${info.cluster}-client.rgw.gw.log`)),
    stop: () =>
      (stopped ??=
        stop?.() ??
        (async () => {
          await killDaemons(info);
          fs.rmSync(info.dir, { recursive: true, force: true });
        })()),
  };
}

function readTail(file: string, bytes = 4000): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.slice(-bytes);
  } catch {
    return '';
  }
}

/** The pids in the cluster's pid files. */
function daemonPids(info: ClusterInfo): number[] {
  const runDir = path.join(info.dir, 'run');
  const pids: number[] = [];
  for (const name of fs.existsSync(runDir) ? fs.readdirSync(runDir) : []) {
    if (!name.startsWith(`${info.cluster}-`) || !name.endsWith('.pid')) continue;
    const pid = Number(fs.readFileSync(path.join(runDir, name), 'utf8').trim());
    if (Number.isInteger(pid) && pid > 1) pids.push(pid);
  }
  return pids;
}

/** SIGKILL to every daemon named in the pid files: memstore keeps nothing worth a clean shutdown. */
async function killDaemons(info: ClusterInfo): Promise<void> {
  const pids = daemonPids(info);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
  const deadline = Date.now() + 5000;
  while (pids.some(alive) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * One cluster per vitest run, shared by every test file that asks: the first caller starts it
 * (under a lock, so the others wait instead of starting their own), the run's global teardown
 * (`test/helpers/cephGlobalSetup.ts`) stops it. Outside such a run (no `SHARED_CEPH_ENV`), the
 * caller gets a private cluster that its `stop()` ends.
 */
export async function sharedCeph(options: CephOptions = {}): Promise<CephCluster> {
  const sharedDir = process.env[SHARED_CEPH_ENV];
  if (!sharedDir) return startCeph(options);
  const infoFile = path.join(sharedDir, 'cluster.json');
  const release = await lockfile.lock(sharedDir, { retries: { retries: 600, minTimeout: 100, maxTimeout: 250 }, stale: 20_000 });
  try {
    if (!fs.existsSync(infoFile)) {
      fs.writeFileSync(infoFile, JSON.stringify(await startCluster(options)));
    }
  } finally {
    await release();
  }
  const info = JSON.parse(fs.readFileSync(infoFile, 'utf8')) as ClusterInfo;
  // Test files "stop" the shared cluster in their afterAll: that must leave it to the teardown.
  return clusterHandle(info, async () => {});
}

/** Stops the shared cluster described in `sharedDir`, if one was started. */
export async function stopSharedCeph(sharedDir: string): Promise<void> {
  const infoFile = path.join(sharedDir, 'cluster.json');
  if (fs.existsSync(infoFile)) {
    const info = JSON.parse(fs.readFileSync(infoFile, 'utf8')) as ClusterInfo;
    await killDaemons(info);
    fs.rmSync(info.dir, { recursive: true, force: true });
  }
  fs.rmSync(sharedDir, { recursive: true, force: true });
}
