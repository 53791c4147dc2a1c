/**
 * One client of the fleet as the monitor shows it: pysubtask's online rule from the heartbeat,
 * plus what its status file says (backlog, oldest pending, last upload, failures), judged against
 * the thresholds into ok / warning / critical. Pure functions; `now` is passed in.
 */
import type { HealthDocument } from '../health/document.js';
import type { ClientReport } from './heartbeats.js';

export type Level = 'ok' | 'warning' | 'critical';

export interface Thresholds {
  /** What an offline client is. @default 'critical' */
  offline: Level;
  /** Oldest pending snapshot older than this (s): warning / critical. */
  backlogWarnSec: number;
  backlogCritSec: number;
  /** Uploads failing for longer than this (s): warning / critical. */
  failingWarnSec: number;
  failingCritSec: number;
}

export const DEFAULT_THRESHOLDS: Thresholds = {
  offline: 'critical',
  backlogWarnSec: 600,
  backlogCritSec: 3600,
  failingWarnSec: 0,
  failingCritSec: 900,
};

export interface ClientView extends ClientReport {
  /** The status file's document, or null when the client has none (older agent) or it is unreadable. */
  status: HealthDocument | null;
  /** Why the status file could not be used (absent: fine, or no file at all). */
  statusProblem?: string;
  backlogFiles: number | null;
  backlogBytes: number | null;
  /** Age of the oldest snapshot waiting on the client (s), by the monitor's clock. */
  oldestPendingSec: number | null;
  lastUploadAt: string | null;
  /** Uploads failing since (ISO), or null. */
  failingSince: string | null;
  lastError: { at: string; code: string; message: string } | null;
  level: Level;
  /** Why the level is not ok, one short phrase each. */
  reasons: string[];
}

const RANK: Record<Level, number> = { ok: 0, warning: 1, critical: 2 };
const STATE_RANK = { offline: 2, unknown: 1, online: 0 } as const;

export function worse(a: Level, b: Level): Level {
  return RANK[a] >= RANK[b] ? a : b;
}

/** Joins a heartbeat's report with its status file and judges it. */
export function clientView(
  report: ClientReport,
  status: { document: HealthDocument } | { problem: string } | null,
  now: number,
  thresholds: Thresholds = DEFAULT_THRESHOLDS,
): ClientView {
  const document = status && 'document' in status ? status.document : null;
  const oldest = document?.queue.oldestQueuedAt ? Date.parse(document.queue.oldestQueuedAt) : NaN;
  const view: ClientView = {
    ...report,
    status: document,
    ...(status && 'problem' in status ? { statusProblem: status.problem } : {}),
    backlogFiles: document ? document.queue.files : null,
    backlogBytes: document ? document.queue.bytes : null,
    oldestPendingSec: Number.isFinite(oldest) ? Math.max(0, Math.round((now - oldest) / 1000)) : null,
    lastUploadAt: document?.lastUploadAt ?? null,
    failingSince: document?.failingSince ?? null,
    lastError: document?.lastError ?? null,
    level: 'ok',
    reasons: [],
  };
  judge(view, now, thresholds);
  return view;
}

function judge(view: ClientView, now: number, t: Thresholds): void {
  const raise = (level: Level, reason: string) => {
    if (level === 'ok') return;
    view.level = worse(view.level, level);
    view.reasons.push(reason);
  };
  if (view.state === 'offline') raise(t.offline, 'offline');
  if (view.state === 'unknown') raise('warning', `heartbeat unreadable`);
  if (view.oldestPendingSec !== null) {
    if (view.oldestPendingSec > t.backlogCritSec) raise('critical', `backlog older than ${seconds(t.backlogCritSec)}`);
    else if (view.oldestPendingSec > t.backlogWarnSec) raise('warning', `backlog older than ${seconds(t.backlogWarnSec)}`);
  }
  const failing = view.failingSince ? Math.max(0, (now - Date.parse(view.failingSince)) / 1000) : null;
  if (failing !== null && Number.isFinite(failing)) {
    const code = view.lastError ? ` (${view.lastError.code})` : '';
    if (failing > t.failingCritSec) raise('critical', `failing for more than ${seconds(t.failingCritSec)}${code}`);
    else if (failing >= t.failingWarnSec) raise('warning', `failing${code}`);
  }
}

function seconds(sec: number): string {
  if (sec % 3600 === 0 && sec > 0) return `${sec / 3600} h`;
  if (sec % 60 === 0 && sec > 0) return `${sec / 60} min`;
  return `${sec} s`;
}

/** Worst first: level, then offline before unknown before online, then the oldest backlog, then by name. */
export function worstFirst(a: ClientView, b: ClientView): number {
  return (
    RANK[b.level] - RANK[a.level] ||
    STATE_RANK[b.state] - STATE_RANK[a.state] ||
    (b.oldestPendingSec ?? -1) - (a.oldestPendingSec ?? -1) ||
    a.client.localeCompare(b.client)
  );
}

export interface FleetSummary {
  clients: number;
  online: number;
  offline: number;
  unknown: number;
  ok: number;
  warning: number;
  critical: number;
  /** The fleet's level: the worst client's (a fleet with no client at all is a warning). */
  level: Level;
}

export function summarize(clients: readonly ClientView[]): FleetSummary {
  const summary: FleetSummary = { clients: clients.length, online: 0, offline: 0, unknown: 0, ok: 0, warning: 0, critical: 0, level: clients.length ? 'ok' : 'warning' };
  for (const client of clients) {
    summary[client.state] += 1;
    summary[client.level] += 1;
    summary.level = worse(summary.level, client.level);
  }
  return summary;
}

/** Exit codes of `--check`, as Nagios and Icinga read them. */
export const CHECK_EXIT: Record<Level, number> = { ok: 0, warning: 1, critical: 2 };
/** `--check` when the remote folder could not be read at all (Nagios: UNKNOWN). */
export const CHECK_EXIT_UNKNOWN = 3;

/** One line for a check's output: `PUSHTASK CRITICAL - 2 offline: pi-3, pi-9; 1 warning: …`. */
export function checkLine(summary: FleetSummary, clients: readonly ClientView[]): string {
  const head = `PUSHTASK ${summary.level.toUpperCase()} - ${summary.clients} client(s): ${summary.online} online, ${summary.offline} offline, ${summary.unknown} unknown`;
  const list = (level: Level) => {
    const bad = clients.filter((client) => client.level === level);
    if (!bad.length) return '';
    const names = bad.slice(0, 10).map((client) => `${client.client} (${client.reasons.join(', ')})`);
    return `; ${level}: ${names.join(', ')}${bad.length > 10 ? `, and ${bad.length - 10} more` : ''}`;
  };
  const none = summary.clients === 0 ? '; no heartbeat files found' : '';
  const perf = `clients=${summary.clients} online=${summary.online} offline=${summary.offline} unknown=${summary.unknown} warning=${summary.warning} critical=${summary.critical}`;
  return `${head}${none}${list('critical')}${list('warning')} | ${perf}`;
}
