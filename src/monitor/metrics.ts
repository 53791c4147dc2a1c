/**
 * `/metrics` of `pushtask monitor --serve`: the fleet in Prometheus' text format (prom-client),
 * one series per client and gauge, set from the latest cycle at each scrape. A client without a
 * status file has no backlog series (absent, not 0: nothing is known).
 */
import { Gauge, Registry } from 'prom-client';
import type { FleetMonitor } from './fleetMonitor.js';

const seconds = (iso: string | null | undefined) => {
  const ms = iso ? Date.parse(iso) : NaN;
  return Number.isFinite(ms) ? ms / 1000 : null;
};

export function fleetRegistry(monitor: FleetMonitor): Registry {
  const registry = new Registry();
  const labelNames = ['client'] as const;
  // Set everything from the latest cycle at once, when scraped: prom-client calls collect() in
  // registration order, so this gauge comes first.
  new Gauge({
    name: 'pushtask_fleet_cycles_total',
    help: 'Monitor cycles run (a gauge that only grows; failed cycles included).',
    registers: [registry],
    collect() {
      this.set(monitor.cycles);
      const snapshot = monitor.snapshot;
      for (const gauge of perClient) gauge.reset();
      for (const client of snapshot.clients) {
        const labels = { client: client.client };
        online.set(labels, client.state === 'online' ? 1 : 0);
        known.set(labels, client.state === 'unknown' ? 0 : 1);
        level.set(labels, client.level === 'ok' ? 0 : client.level === 'warning' ? 1 : 2);
        const heartbeatAt = seconds(client.lastSeen);
        if (heartbeatAt !== null) lastHeartbeat.set(labels, heartbeatAt);
        if (!client.status) continue;
        backlogBytes.set(labels, client.backlogBytes ?? 0);
        backlogFiles.set(labels, client.backlogFiles ?? 0);
        oldest.set(labels, client.oldestPendingSec ?? 0);
        failing.set(labels, client.failingSince ? 1 : 0);
        const uploadAt = seconds(client.lastUploadAt);
        if (uploadAt !== null) lastUpload.set(labels, uploadAt);
        if (client.status.spoolDisk) spoolFree.set(labels, client.status.spoolDisk.freeBytes);
      }
      for (const state of ['online', 'offline', 'unknown'] as const) clients.set({ state }, snapshot.summary[state]);
      if (snapshot.cycleMs !== null) cycle.set(snapshot.cycleMs / 1000);
      cycleOk.set(snapshot.checkedAt !== null && snapshot.error === null ? 1 : 0);
      const at = seconds(snapshot.checkedAt);
      if (at !== null) lastCycle.set(at);
    },
  });
  const online = new Gauge({ name: 'pushtask_client_online', help: '1 when the client is online by its heartbeat (pysubtask rule), 0 when offline or unknown.', labelNames, registers: [registry] });
  const known = new Gauge({ name: 'pushtask_client_heartbeat_readable', help: '1 when the heartbeat could be read and understood, 0 when its state is unknown.', labelNames, registers: [registry] });
  const level = new Gauge({ name: 'pushtask_client_level', help: "The monitor's judgement of the client: 0 ok, 1 warning, 2 critical.", labelNames, registers: [registry] });
  const backlogBytes = new Gauge({ name: 'pushtask_client_backlog_bytes', help: 'Bytes waiting on the client, from its status file.', labelNames, registers: [registry] });
  const backlogFiles = new Gauge({ name: 'pushtask_client_backlog_files', help: 'Snapshots waiting on the client, from its status file.', labelNames, registers: [registry] });
  const oldest = new Gauge({ name: 'pushtask_client_oldest_pending_seconds', help: 'Age of the oldest snapshot waiting on the client (0 when none waits).', labelNames, registers: [registry] });
  const lastUpload = new Gauge({ name: 'pushtask_client_last_upload_timestamp_seconds', help: 'When the client last delivered data (client clock).', labelNames, registers: [registry] });
  const lastHeartbeat = new Gauge({ name: 'pushtask_client_last_heartbeat_timestamp_seconds', help: "The heartbeat file's modification time (client clock).", labelNames, registers: [registry] });
  const failing = new Gauge({ name: 'pushtask_client_failing', help: "1 while the client's uploads are failing, from its status file.", labelNames, registers: [registry] });
  const spoolFree = new Gauge({ name: 'pushtask_client_spool_free_bytes', help: "Free space on the client's spool disk.", labelNames, registers: [registry] });
  const perClient = [online, known, level, backlogBytes, backlogFiles, oldest, lastUpload, lastHeartbeat, failing, spoolFree];
  const clients = new Gauge({ name: 'pushtask_fleet_clients', help: 'Clients by heartbeat state.', labelNames: ['state'] as const, registers: [registry] });
  const cycle = new Gauge({ name: 'pushtask_fleet_cycle_seconds', help: 'Duration of the last monitor cycle.', registers: [registry] });
  const cycleOk = new Gauge({ name: 'pushtask_fleet_last_cycle_ok', help: '1 when the last cycle could read the remote folder.', registers: [registry] });
  const lastCycle = new Gauge({ name: 'pushtask_fleet_last_cycle_timestamp_seconds', help: 'When the last successful cycle ended.', registers: [registry] });

  return registry;
}
