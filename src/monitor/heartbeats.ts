/**
 * pysubtask's online rule for `pushtask monitor`, as pure functions. A client uploads
 * `<name>.heartbeat` holding the seconds until its next heartbeat is due (interval + 10); it is
 * offline once now > the remote file's mtime + those seconds. pushtask keeps the source's mtime on
 * upload, so the mtime is the client's clock when it wrote the heartbeat.
 */
import { HEARTBEAT_SUFFIX } from '../shared/sidecar.js';
import type { RemoteEntry } from '../transports/types.js';

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
