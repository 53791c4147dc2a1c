/**
 * A fleet of fake clients written into a folder, as agents would leave it on a server:
 * `<name>.heartbeat` (mtime = when written) and `.pushtask/<name>.json`. Used by the monitor's
 * tests and bench/monitor.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HEALTH_DIR, emptyCounters, serializeHealth, type HealthDocument } from '../../src/health/document.js';

export interface FakeClient {
  name: string;
  /** Seconds since the heartbeat was written. */
  ageSec: number;
  /** Seconds it holds. @default 70 */
  graceSec?: number;
  /** The status file's document (null: no status file, like an older agent). */
  status?: Partial<HealthDocument> | null;
}

export function healthDocument(name: string, now: number, overrides: Partial<HealthDocument> = {}): HealthDocument {
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    schema: 1,
    pushtask: '0.1.0',
    name,
    host: `${name}.example`,
    startedAt: iso(now - 86_400_000),
    writtenAt: iso(now),
    heartbeatSec: 70,
    connection: { state: 'connected', since: iso(now - 3_600_000), nextRetryAt: null },
    queue: { files: 0, bytes: 0, oldestQueuedAt: null },
    lastUploadAt: iso(now - 30_000),
    failingSince: null,
    lastError: null,
    sinceStart: { ...emptyCounters(), uploads: 120, bytes: 1_234_567, notifies: 130 },
    total: { ...emptyCounters(), uploads: 9000, bytes: 98_765_432 },
    spoolDisk: { freeBytes: 10e9, totalBytes: 32e9 },
    ...overrides,
  };
}

export function writeFakeClient(dir: string, client: FakeClient, now = Date.now()): void {
  fs.mkdirSync(path.join(dir, HEALTH_DIR), { recursive: true });
  const written = new Date(now - client.ageSec * 1000);
  const heartbeat = path.join(dir, `${client.name}.heartbeat`);
  fs.writeFileSync(heartbeat, `${client.graceSec ?? 70}\n`);
  fs.utimesSync(heartbeat, written, written);
  const statusFile = path.join(dir, HEALTH_DIR, `${client.name}.json`);
  if (client.status === null) {
    fs.rmSync(statusFile, { force: true });
    return;
  }
  fs.writeFileSync(statusFile, serializeHealth(healthDocument(client.name, written.getTime(), client.status ?? {})));
  fs.utimesSync(statusFile, written, written);
}

/** `count` clients `logger-0000`…: every 10th (5, 15, …) without a status file, every 25th (24, 49, …) offline, every 40th (39, 79, …) two hours behind. */
export function writeFakeFleet(dir: string, count: number, now = Date.now()): FakeClient[] {
  const clients: FakeClient[] = [];
  for (let i = 0; i < count; i += 1) {
    const name = `logger-${String(i).padStart(4, '0')}`;
    const offline = i % 25 === 24;
    const behind = i % 40 === 39;
    const client: FakeClient = {
      name,
      ageSec: offline ? 600 : i % 60,
      status:
        i % 10 === 5
          ? null
          : behind
            ? { queue: { files: 12, bytes: 12 * 4096, oldestQueuedAt: new Date(now - 7_200_000).toISOString() } }
            : {},
    };
    writeFakeClient(dir, client, now);
    clients.push(client);
  }
  return clients;
}
