/** Small formatting helpers for human-readable CLI lines. */
import path from 'node:path';
import type { ResolvedConfig } from '../config/resolve.js';

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** Local wall-clock time, with milliseconds: event lines happen within the same second. */
export function clockTime(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** "14:02:07 (12 s ago)"; the date is added when it is not today. */
export function when(iso: string, now: number): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  const d = new Date(ms);
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const sameDay = new Date(now).toDateString() === d.toDateString();
  const stamp = sameDay ? time : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
  return `${stamp} (${ago(now - ms)})`;
}

function ago(ms: number): string {
  if (ms < 0) return `in ${duration(-ms)}`;
  return `${duration(ms)} ago`;
}

export function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

/** A path relative to `base` when it lies below it (shorter lines), else as given. */
export function shortPath(file: string, base: string | undefined): string {
  if (!base) return file;
  const relative = path.relative(base, file);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : file;
}

/** "local folder /x/remote", "sftp user@host:22 incoming", "dropbox /pushtask". */
export function describeTarget(config: ResolvedConfig): string {
  const t = config.transport;
  switch (t.type) {
    case 'local':
      return `local folder ${t.dir}`;
    case 'dropbox':
      return `dropbox ${t.remoteDir}`;
    case 's3':
      return `s3 ${t.endpoint ?? 'AWS'} bucket ${t.bucket}${t.remoteDir ? ` prefix ${t.remoteDir}` : ''}`;
    default:
      return `${t.type} ${t.username}@${t.host}${t.port ? `:${t.port}` : ''} ${t.remoteDir}`;
  }
}
