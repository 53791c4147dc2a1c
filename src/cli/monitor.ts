/**
 * `pushtask monitor`: the fleet view pysubtask's README wished for. Reads the `.heartbeat` files in
 * the transport's remote folder (online/offline/unknown by pysubtask's rule) and the status files
 * beside them (`.pushtask/<name>.json`: backlog, oldest pending, last upload, failures), judges
 * each client against thresholds, and shows the fleet worst first: a table, JSON, a check for
 * cron/Nagios (exit 0/1/2), or a web page with `/metrics` (--serve).
 */
import path from 'node:path';
import { loadConfigFile } from '../config/load.js';
import { sleep } from '../shared/abort.js';
import { PushtaskError } from '../shared/errors.js';
import { CHECK_EXIT, CHECK_EXIT_UNKNOWN, DEFAULT_THRESHOLDS, checkLine, type Level, type Thresholds } from '../monitor/fleet.js';
import { FleetMonitor, type FleetSnapshot } from '../monitor/fleetMonitor.js';
import { DEFAULT_CONNECTIONS, FleetReader } from '../monitor/reader.js';
import { DEFAULT_MONITOR_PORT, serveMonitor } from '../monitor/server.js';
import { parseCommandArgs } from './args.js';
import type { CliIO, Command } from './command.js';
import { EXIT_OK, UsageError } from './errors.js';
import { formatFleet } from './fleetTable.js';
import { clockTime } from './format.js';

const DEFAULT_INTERVAL_SEC = 10;
const T = DEFAULT_THRESHOLDS;

const help = `Usage: pushtask monitor --config FILE [--watch [--interval SEC]] [--json]
       pushtask monitor --config FILE --check [thresholds]
       pushtask monitor --config FILE --serve [--port N] [--host ADDR] [--interval SEC]

Shows a fleet of clients from what they upload into the remote folder: <name>.heartbeat (clients
write it when their config has heartbeat: { intervalSec: N }, N > 0) and, from pushtask clients,
the status file .pushtask/<name>.json beside it. A client is offline once now is later than the
heartbeat's modification time plus the seconds it holds (pysubtask's rule); "unknown" when the
heartbeat cannot be read or understood. From the status file: backlog, age of the oldest pending
file, last upload, and the error while uploads fail. Each client is judged ok, warning or
critical by the thresholds below; the worst come first.

Only the config's transport is used (its remoteDir is the folder read): a client's config works
as it is, and a config for the monitor alone may leave out \`watch\`. Both clocks should be right
(NTP): the times are the client's clock.

Options:
  --config FILE        the config file whose transport reaches the remote folder
  --watch              check again and again until Ctrl-C (a terminal shows the table in place)
  --interval SEC       seconds between checks with --watch or --serve (default ${DEFAULT_INTERVAL_SEC})
  --json               machine-readable: one JSON object (with --watch: one per line)
  --check              one check for cron, systemd timers, Nagios or Icinga: prints one line and
                       exits 0 (all ok), 1 (a warning), 2 (a critical client), 3 (cannot read the folder)
  --serve              serve the fleet page, /api/clients and /metrics (Prometheus) until Ctrl-C
  --port N             port of --serve (default ${DEFAULT_MONITOR_PORT}; 0 picks a free one)
  --host ADDR          address of --serve (default 127.0.0.1, this machine only; 0.0.0.0 for all)
  --connections N      connections used to read the folder (default ${DEFAULT_CONNECTIONS})
  --debug              log the transport's work to stderr; stack traces on errors
  -h, --help           show this help

Thresholds (for the level shown everywhere and --check's exit code):
  --offline LEVEL      what an offline client is: critical, warning or ok (default ${T.offline})
  --backlog-warn SEC   oldest pending file older than this: warning (default ${T.backlogWarnSec})
  --backlog-crit SEC   ... critical (default ${T.backlogCritSec})
  --failing-warn SEC   uploads failing for this long: warning (default ${T.failingWarnSec}: at once)
  --failing-crit SEC   ... critical (default ${T.failingCritSec})
  A heartbeat that cannot be read is a warning; no heartbeat file at all is a warning.

Exit code 1 when the remote folder cannot be read (without --watch/--serve; they report the
error and try again), 3 with --check.

Examples:
  pushtask monitor --config server.config.ts
  pushtask monitor --config pushtask.config.ts --watch --interval 30
  pushtask monitor --config server.config.ts --json | jq '.clients[] | select(.level != "ok")'
  pushtask monitor --config server.config.ts --check --backlog-crit 7200 --offline warning
  pushtask monitor --config server.config.ts --serve --port 9717
`;

export const command: Command = {
  name: 'monitor',
  summary: 'the fleet: which clients are online, behind or failing (table, JSON, --check, --serve page and /metrics)',
  help,
  async run(argv, io) {
    const { values } = parseCommandArgs('monitor', argv, {
      config: { type: 'string' },
      watch: { type: 'boolean' },
      interval: { type: 'string' },
      json: { type: 'boolean' },
      check: { type: 'boolean' },
      serve: { type: 'boolean' },
      port: { type: 'string' },
      host: { type: 'string' },
      connections: { type: 'string' },
      offline: { type: 'string' },
      'backlog-warn': { type: 'string' },
      'backlog-crit': { type: 'string' },
      'failing-warn': { type: 'string' },
      'failing-crit': { type: 'string' },
    });
    if (!values.config) throw new UsageError('--config FILE is required', 'monitor');
    const modes = [values.watch, values.check, values.serve].filter(Boolean).length;
    if (modes > 1) throw new UsageError('--watch, --check and --serve go one at a time', 'monitor');
    if (values.interval !== undefined && !values.watch && !values.serve) throw new UsageError('--interval only goes with --watch or --serve', 'monitor');
    if ((values.port !== undefined || values.host !== undefined) && !values.serve) throw new UsageError('--port and --host only go with --serve', 'monitor');
    if (values.check && values.json) throw new UsageError('--check prints one line; use --json without --check for details', 'monitor');
    const intervalSec = seconds('--interval', values.interval, DEFAULT_INTERVAL_SEC, { positive: true });
    const port = values.port === undefined ? DEFAULT_MONITOR_PORT : Number(values.port);
    if (!/^\d{1,5}$/.test(values.port ?? '0') || port > 65_535) throw new UsageError(`--port: expected a port number (0-65535), got ${JSON.stringify(values.port)}`, 'monitor');
    const connections = values.connections === undefined ? DEFAULT_CONNECTIONS : Number(values.connections);
    if (!/^\d{1,3}$/.test(values.connections ?? '1') || connections < 1) {
      throw new UsageError(`--connections: expected a whole number >= 1, got ${JSON.stringify(values.connections)}`, 'monitor');
    }
    const thresholds = readThresholds(values);

    // A monitor-only config needs no watch list: one is filled in that is never used (a file, not a
    // folder, so that no check about drop folders containing the destination applies to it).
    const loaded = await loadConfigFile(path.resolve(io.cwd, values.config), { defaults: { watch: [{ file: 'unused-by-monitor' }] } });
    const reader = await FleetReader.open(loaded.resolved, { debug: Boolean(values.debug), connections });
    const monitor = new FleetMonitor(reader, thresholds, intervalSec);
    try {
      if (values.serve) return await serve(monitor, io, { port, host: values.host ?? '127.0.0.1' });
      if (values.watch) {
        await watchLoop(monitor, io, { intervalSec, json: Boolean(values.json) });
        return EXIT_OK;
      }
      const snapshot = await monitor.cycle(new AbortController().signal);
      if (values.check) {
        if (snapshot.error) {
          io.out(`PUSHTASK UNKNOWN - cannot read ${snapshot.target}: ${snapshot.error}\n`);
          return CHECK_EXIT_UNKNOWN;
        }
        io.out(`${checkLine(snapshot.summary, snapshot.clients)}\n`);
        return CHECK_EXIT[snapshot.summary.level];
      }
      if (snapshot.error) throw new PushtaskError('REMOTE_READ_FAILED', snapshot.error);
      io.out(values.json ? `${JSON.stringify(jsonReport(snapshot), null, 2)}\n` : formatFleet(snapshot, Date.now()));
      return EXIT_OK;
    } finally {
      await reader.close();
    }
  },
};

function seconds(flag: string, text: string | undefined, fallback: number, { positive = false } = {}): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || (positive && !(value > 0))) {
    throw new UsageError(`${flag}: expected ${positive ? 'a number > 0' : 'a number >= 0'}, got ${JSON.stringify(text)}`, 'monitor');
  }
  return value;
}

function readThresholds(values: Record<string, string | boolean | undefined>): Thresholds {
  const text = (name: string) => values[name] as string | undefined;
  const offline = text('offline') ?? T.offline;
  if (!['ok', 'warning', 'critical'].includes(offline)) throw new UsageError(`--offline: expected critical, warning or ok, got ${JSON.stringify(offline)}`, 'monitor');
  const thresholds: Thresholds = {
    offline: offline as Level,
    backlogWarnSec: seconds('--backlog-warn', text('backlog-warn'), T.backlogWarnSec),
    backlogCritSec: seconds('--backlog-crit', text('backlog-crit'), T.backlogCritSec),
    failingWarnSec: seconds('--failing-warn', text('failing-warn'), T.failingWarnSec),
    failingCritSec: seconds('--failing-crit', text('failing-crit'), T.failingCritSec),
  };
  if (thresholds.backlogWarnSec > thresholds.backlogCritSec) throw new UsageError('--backlog-warn must not be above --backlog-crit', 'monitor');
  if (thresholds.failingWarnSec > thresholds.failingCritSec) throw new UsageError('--failing-warn must not be above --failing-crit', 'monitor');
  return thresholds;
}

/** `--json`: the snapshot, with the field names earlier versions printed (`checkedAt`, `target`, `clients`). */
function jsonReport(snapshot: FleetSnapshot) {
  const { checkedAt, target, cycleMs, summary, clients } = snapshot;
  return { checkedAt, target, cycleMs, summary, clients };
}

function onStopSignal(): { signal: AbortSignal; release: () => void } {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: stop.signal,
    release: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

async function watchLoop(monitor: FleetMonitor, io: CliIO, { intervalSec, json }: { intervalSec: number; json: boolean }): Promise<void> {
  const { signal, release } = onStopSignal();
  const tty = Boolean(io.stdout.isTTY) && !json;
  try {
    while (!signal.aborted) {
      const snapshot = await monitor.cycle(signal);
      if (signal.aborted) break;
      let text: string;
      if (snapshot.error) {
        const failure = `${clockTime(Date.now())} pushtask monitor: ${snapshot.error}; trying again in ${intervalSec} s\n`;
        if (json || !tty) {
          io.err(failure);
          text = '';
        } else {
          text = failure;
        }
      } else {
        text = json ? `${JSON.stringify(jsonReport(snapshot))}\n` : formatFleet(snapshot, Date.now());
      }
      if (tty) io.out(`\x1b[H\x1b[2J${clockTime(Date.now())}  every ${intervalSec} s, Ctrl-C stops\n\n${text}`);
      else if (json) io.out(text);
      else if (text) io.out(`--- ${new Date().toISOString()}\n${text}`);
      await sleep(intervalSec * 1000, signal);
    }
  } finally {
    release();
  }
}

async function serve(monitor: FleetMonitor, io: CliIO, options: { port: number; host: string }): Promise<number> {
  const server = await serveMonitor(monitor, options);
  const { signal, release } = onStopSignal();
  io.out(`Fleet page: ${server.url}  (metrics: ${server.url}metrics, JSON: ${server.url}api/clients); Ctrl-C stops\n`);
  try {
    await monitor.run(signal, (snapshot) => {
      if (snapshot.error) io.err(`${clockTime(Date.now())} pushtask monitor: ${snapshot.error}; trying again in ${snapshot.intervalSec} s\n`);
    });
  } finally {
    release();
    await server.close();
  }
  return EXIT_OK;
}
