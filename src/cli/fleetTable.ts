/** The fleet as a readable table for `pushtask monitor`, worst first. */
import { HEARTBEAT_SUFFIX } from '../shared/sidecar.js';
import type { ClientView } from '../monitor/fleet.js';
import type { FleetSnapshot } from '../monitor/fleetMonitor.js';
import { duration, formatBytes, when } from './format.js';

export function formatFleet(snapshot: Pick<FleetSnapshot, 'clients' | 'summary' | 'target'>, now: number): string {
  const { clients, summary, target } = snapshot;
  if (clients.length === 0) {
    return `No ${HEARTBEAT_SUFFIX} files in ${target}.\nA client writes one when its config has heartbeat: { intervalSec: 60 } (or any interval > 0).\n`;
  }
  const counts = (['online', 'offline', 'unknown'] as const)
    .filter((state) => summary[state] > 0)
    .map((state) => `${summary[state]} ${state}`)
    .join(', ');
  const problems = summary.critical + summary.warning > 0 ? `; ${summary.critical} critical, ${summary.warning} warning` : '';
  const rows = clients.map((client) => [
    client.client,
    client.state === 'offline' ? 'OFFLINE' : client.state,
    client.level === 'ok' ? 'ok' : client.level.toUpperCase(),
    client.lastSeen ? when(client.lastSeen, now) : 'unknown',
    backlog(client),
    client.backlogFiles && client.oldestPendingSec !== null ? duration(client.oldestPendingSec * 1000) : '',
    client.lastUploadAt ? when(client.lastUploadAt, now) : '',
    detail(client, now),
  ]);
  const header = ['CLIENT', 'STATE', 'LEVEL', 'LAST SEEN', 'BACKLOG', 'OLDEST', 'LAST UPLOAD', 'DETAIL'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!)))
      .join('  ')
      .trimEnd();
  return `${[`Heartbeats in ${target}: ${counts}${problems}`, line(header), ...rows.map(line)].join('\n')}\n`;
}

function backlog(client: ClientView): string {
  if (client.backlogFiles === null || client.backlogBytes === null) return '-';
  return `${client.backlogFiles} (${formatBytes(client.backlogBytes)})`;
}

function detail(client: ClientView, now: number): string {
  const parts: string[] = [];
  if (client.state === 'unknown') parts.push(client.problem ?? 'unknown');
  else if (client.state === 'offline') parts.push(`overdue since ${when(client.offlineAt!, now)}`);
  if (client.failingSince && client.lastError) parts.push(`failing: ${client.lastError.message} [${client.lastError.code}]`);
  if (client.statusProblem) parts.push(client.statusProblem);
  if (client.state === 'online' && parts.length === 0) parts.push(`next heartbeat due by ${when(client.offlineAt!, now)}`);
  return parts.join('; ');
}
