/**
 * Reads a spool's status.json and turns it into a short readable summary (`pushtask status`, and
 * the demo's `s` command).
 */
import fs from 'node:fs';
import path from 'node:path';
import { STATUS_FILE, type AgentStatus } from '../subtask/status.js';
import { printable } from '../shared/printable.js';
import { formatBytes, shortPath, when } from './format.js';

export type StatusRead = { kind: 'found'; file: string; status: AgentStatus; raw: string } | { kind: 'missing'; file: string };

export function readStatus(spoolDir: string): StatusRead {
  const file = path.join(spoolDir, STATUS_FILE);
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing', file };
    throw error;
  }
  try {
    return { kind: 'found', file, status: JSON.parse(raw) as AgentStatus, raw };
  } catch (error) {
    // Written atomically, so this is damage (or a foreign file), not a half-written update.
    throw new Error(`${file} is not valid JSON (${(error as Error).message}); the next status update rewrites it`, { cause: error });
  }
}

export function missingStatusMessage(file: string): string {
  return `No status yet: ${file} does not exist. The agent writes it once it has started (pushtask watch, pushtask demo or an app embedding TaskMaster).\n`;
}

export interface FormatOptions {
  now?: number;
  /** Shown paths are made relative to this folder. */
  base?: string;
  /** Whether a pid still runs: a "running" status whose process is gone was left by a killed agent. */
  isAlive?: (pid: number) => boolean;
}

export function formatStatus(status: AgentStatus, options: FormatOptions = {}): string {
  const now = options.now ?? Date.now();
  const short = (file: string) => shortPath(file, options.base);
  const alive = options.isAlive ?? pidAlive;
  const lines: string[] = [];
  const row = (label: string, value: string) => lines.push(`${`${label}:`.padEnd(12)} ${value}`);

  const running = status.running && alive(status.pid);
  const state = status.running
    ? running
      ? `running (pid ${status.pid}, since ${when(status.startedAt, now)})`
      : `not running: pid ${status.pid} is gone without a clean stop (killed?)`
    : 'stopped';
  row('Agent', state);
  if (status.transport) row('Transport', status.transport);
  const { connection } = status;
  const retry = connection.nextRetryAt ? `, next try ${when(connection.nextRetryAt, now)}` : '';
  // The last state a stopped agent wrote is history, not a connection ("stopped" + "connecting").
  row('Connection', running ? `${connection.state} since ${when(connection.since, now)}${retry}` : 'none (the agent is not running)');
  row('Queue', `${status.queue.length} file(s), ${formatBytes(status.queue.bytes)}`);
  for (const item of status.queue.items.slice(0, 5)) lines.push(`${''.padEnd(13)}${short(item.file)} (${formatBytes(item.bytes)})`);
  if (status.queue.length > 5) lines.push(`${''.padEnd(13)}… and ${status.queue.length - 5} more`);
  const flights = status.inFlight;
  row('In flight', flights.length ? `${flights.length} upload(s)` : 'nothing');
  for (const f of flights) lines.push(`${''.padEnd(13)}${short(f.file)} → ${f.remotePath} (${formatBytes(f.bytes)}, since ${when(f.startedAt, now)})`);
  const c = status.counters;
  row('Counters', `${c.notifies} notifies, ${c.uploads} uploads (${formatBytes(c.bytesUploaded)}), ${c.failures} failures`);
  row('Heartbeat', status.heartbeat ? `${short(status.heartbeat.file)}, next due ${when(status.heartbeat.nextDueAt, now)}` : 'off');
  const last = status.lastError;
  row('Last error', last ? `${when(last.at, now)}${last.file ? ` ${short(last.file)}` : ''}: ${last.message} [${last.code}]` : 'none');

  const files = Object.entries(status.files);
  const older = status.olderFiles ?? 0;
  lines.push(files.length ? `Files:${older ? ` the ${files.length} most recently active (${older} older ones are in the counters)` : ''}` : 'Files:      none uploaded yet');
  for (const [file, info] of files) {
    lines.push(`  ${short(file)}`);
    const up = info.lastUpload;
    lines.push(`    last upload ${up ? `${when(up.at, now)} → ${up.remotePath} (${formatBytes(up.bytes)}, ${up.ms} ms)` : 'never'}`);
    if (info.lastError) lines.push(`    last error  ${when(info.lastError.at, now)}: ${info.lastError.message} [${info.lastError.code}]`);
  }
  lines.push(`(status written ${when(status.updatedAt, now)})`);
  // File names and error texts come from anyone who can drop a file: no terminal escapes.
  return `${lines.map(printable).join('\n')}\n`;
}

/** Whether a process with this pid exists (EPERM: it does, but belongs to someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the pid exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
