/**
 * pysubtask's online rule for `pushtask monitor`, as pure functions. A client uploads
 * `<name>.heartbeat` holding the seconds until its next heartbeat is due (interval + 10); it is
 * offline once now > the remote file's mtime + those seconds. pushtask keeps the source's mtime on
 * upload, so the mtime is the client's clock when it wrote the heartbeat.
 */
import { HEARTBEAT_SUFFIX } from '../shared/sidecar.js';
import type { RemoteEntry } from '../transports/types.js';
import { when } from './format.js';

/** A heartbeat holds a few digits; anything bigger is not one. */
export const HEARTBEAT_MAX_BYTES = 1024;

export type ClientState = 'online' | 'offline' | 'unknown';

export interface ClientReport {
  /** The heartbeat name: the file name without `.heartbeat` (the client's host name by default). */
  client: string;
  file: string;
  state: ClientState;
  /** The heartbeat file's mtime (ISO), or null when the server gave none. */
  lastSeen: string | null;
  /** Seconds since lastSeen (negative: the client's clock is ahead of ours). */
  lastSeenAgoSec: number | null;
  /** The seconds the heartbeat holds, or null when unreadable. */
  graceSec: number | null;
  /** When the client goes (or went) offline without a new heartbeat (ISO). */
  offlineAt: string | null;
  /** Why the state is unknown. */
  problem?: string;
}

/** The seconds a heartbeat holds: a positive whole number on its first line, else null. */
export function parseHeartbeat(content: string): number | null {
  const first = content.split('\n', 1)[0]!.trim();
  if (!/^\d{1,9}$/.test(first)) return null;
  const seconds = Number(first);
  return seconds > 0 ? seconds : null;
}

export function isHeartbeatEntry(entry: RemoteEntry): boolean {
  return entry.kind === 'file' && entry.name.endsWith(HEARTBEAT_SUFFIX) && entry.name.length > HEARTBEAT_SUFFIX.length;
}

/** What a heartbeat file says; `content` is a problem text when it could not be read. */
export function assess(entry: RemoteEntry, content: { text: string } | { problem: string }, now: number): ClientReport {
  const mtime = entry.mtime.getTime();
  const known = Number.isFinite(mtime);
  const report: ClientReport = {
    client: entry.name.slice(0, -HEARTBEAT_SUFFIX.length),
    file: entry.name,
    state: 'unknown',
    lastSeen: known ? new Date(mtime).toISOString() : null,
    lastSeenAgoSec: known ? Math.round((now - mtime) / 1000) : null,
    graceSec: null,
    offlineAt: null,
  };
  if ('problem' in content) return { ...report, problem: `cannot read it: ${content.problem}` };
  const seconds = parseHeartbeat(content.text);
  if (seconds === null) return { ...report, problem: `its content ${JSON.stringify(content.text.slice(0, 40))} is not a number of seconds` };
  report.graceSec = seconds;
  if (!known) return { ...report, problem: 'the server reports no modification time' };
  const offlineAt = mtime + seconds * 1000;
  return { ...report, offlineAt: new Date(offlineAt).toISOString(), state: now > offlineAt ? 'offline' : 'online' };
}

/** A readable table, one client a row. */
export function formatClients(reports: readonly ClientReport[], target: string, now: number): string {
  if (reports.length === 0) {
    return `No ${HEARTBEAT_SUFFIX} files in ${target}.\nA client writes one when its config has heartbeat: { intervalSec: 60 } (or any interval > 0).\n`;
  }
  const counts = (['online', 'offline', 'unknown'] as const)
    .map((state) => [state, reports.filter((report) => report.state === state).length] as const)
    .filter(([, count]) => count > 0)
    .map(([state, count]) => `${count} ${state}`)
    .join(', ');
  const rows = reports.map((report) => [
    report.client,
    report.state === 'offline' ? 'OFFLINE' : report.state,
    report.lastSeen ? when(report.lastSeen, now) : 'unknown',
    detail(report, now),
  ]);
  const header = ['CLIENT', 'STATE', 'LAST SEEN', 'DETAIL'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) => cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ');
  return `${[`Heartbeats in ${target}: ${counts}`, line(header), ...rows.map(line)].join('\n')}\n`;
}

function detail(report: ClientReport, now: number): string {
  if (report.state === 'unknown') return report.problem ?? 'unknown';
  const offlineAt = report.offlineAt!;
  return report.state === 'online' ? `next heartbeat due by ${when(offlineAt, now)}` : `overdue since ${when(offlineAt, now)}`;
}
