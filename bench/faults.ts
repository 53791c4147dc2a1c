/**
 * Link faults (issue 12): a real agent delivering through the fault proxy on the issue's simulated
 * link (50 ms each way, 256 KiB/s each way), per transport: SFTP (OpenSSH's sshd where it can run,
 * else the embedded server), FTPS (ftp-srv), Dropbox (the fake server) and S3 (Ceph RGW, where
 * it can run). Default `link` and
 * `retry` settings, as a new user has them.
 * - reset → next delivery: every connection is reset while a 16 KiB file is on the wire; ms
 *   until the server holds it (median and max of ≥ 5);
 * - silent drop → delivery: the link goes silent for 20 s while a file is on the wire (connections
 *   open then stay dead, as after a lost NAT mapping); ms from the link's return to delivery; and
 *   the same while a new connection is being made (after the dead time);
 * - TCP connections per delivery after the dead time (and sshd's logins where it tells).
 * FTPS: only the control connection crosses the proxy; passive data connections go direct.
 * The scenarios are shared with test/integration/link-faults.test.ts (test/helpers/linkFaults.ts).
 */
import {
  FIELD_LINK,
  connectionsPerDelivery,
  dropboxTarget,
  embeddedSftpTarget,
  ftpsTarget,
  resetToDelivery,
  s3Target,
  silentDropToDelivery,
  silentDropWhileConnecting,
  sshdTarget,
  startLinkRun,
  type LinkTarget,
} from '../test/helpers/linkFaults.js';
import { cephUnavailable } from '../test/helpers/ceph.js';
import { sshdUnavailable } from '../test/helpers/sshd.js';
import { fmt, goalRow, loadTaskMaster, sleep, summarize, type Bench, type Row } from './lib.js';

const FILE_BYTES = 16 * 1024;
const DEAD_TIME_MS = 5000;
/** The issue's goals on this link. */
const RESET_MEDIAN_GOAL_MS = 1500;
const RESET_MAX_GOAL_MS = 3000;
const SILENT_DROP_GOAL_MS = 5000;

export const faultsBench: Bench = async ({ quick }) => {
  const TaskMaster = await loadTaskMaster('src');
  const rows: Row[] = [];
  const sftp = sshdUnavailable() === null ? sshdTarget : embeddedSftpTarget;
  if (sshdUnavailable()) console.log(`  sftp: OpenSSH cannot run here (${sshdUnavailable()}); using the embedded server`);
  const makers: Array<[string, () => Promise<LinkTarget | null>]> = [
    ['sftp', sftp],
    ['ftps', ftpsTarget],
    ['dropbox', dropboxTarget],
    ['s3', s3Target],
  ];
  if (cephUnavailable()) console.log(`  s3: skipped (${cephUnavailable()})`);
  const resets = quick ? 3 : 7;
  const dropMs = quick ? 8000 : 20_000;
  for (const [name, make] of makers) {
    const target = await make();
    if (!target) continue;
    const run = await startLinkRun(TaskMaster, target, { shape: FIELD_LINK, config: { deadTimeMs: DEAD_TIME_MS } });
    try {
      const samples: number[] = [];
      for (let i = 0; i < resets; i += 1) {
        samples.push(await resetToDelivery(run, FILE_BYTES));
        await sleep(300);
      }
      const reset = summarize(samples);
      console.log(`  ${target.name}: reset → next delivery: median ${fmt(reset.median)} ms, max ${fmt(reset.max)} ms (n=${reset.n}: ${samples.map((ms) => fmt(ms, 0)).join(', ')})`);
      rows.push(goalRow('faults', `${name}: reset → next delivery, median`, reset.median, 'ms', RESET_MEDIAN_GOAL_MS));
      rows.push(goalRow('faults', `${name}: reset → next delivery, max`, reset.max, 'ms', RESET_MAX_GOAL_MS));

      const afterDrop = await silentDropToDelivery(run, FILE_BYTES, dropMs);
      console.log(`  ${target.name}: ${dropMs / 1000} s silent drop → delivery ${fmt(afterDrop)} ms after the link is back`);
      rows.push(goalRow('faults', `${name}: ${dropMs / 1000} s silent drop → delivery after the link is back`, afterDrop, 'ms', SILENT_DROP_GOAL_MS));

      const whileConnecting = await silentDropWhileConnecting(run, DEAD_TIME_MS, dropMs);
      console.log(`  ${target.name}: ${dropMs / 1000} s silent drop while connecting → delivery ${fmt(whileConnecting)} ms after the link is back`);
      rows.push(goalRow('faults', `${name}: ${dropMs / 1000} s silent drop while connecting → delivery after`, whileConnecting, 'ms', SILENT_DROP_GOAL_MS));

      const { connections, logins } = await connectionsPerDelivery(run, DEAD_TIME_MS);
      console.log(`  ${target.name}: after the dead time, one delivery took ${connections} TCP connection(s)${logins === null ? '' : `, ${logins} login(s) in sshd's log`}`);
      rows.push(goalRow('faults', `${name}: TCP connections per delivery after the dead time`, connections, '', 2));
      if (logins !== null) rows.push(goalRow('faults', `${name}: sshd logins per delivery after the dead time`, logins, '', 2));
    } finally {
      await run.close();
      await target.close();
    }
  }
  return rows;
};
