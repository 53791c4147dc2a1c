/**
 * `pushtask monitor`: the server-side "online status" app pysubtask's README wished for. Lists the
 * `.heartbeat` files in the transport's remote folder and applies pysubtask's rule to each.
 */
import path from 'node:path';
import { loadConfigFile } from '../config/load.js';
import type { ResolvedConfig } from '../config/resolve.js';
import { sleep, withTimeout } from '../shared/abort.js';
import { PushtaskError, errorMessage, toErrorInfo } from '../shared/errors.js';
import { createLogger, silentLogger } from '../shared/logger.js';
import { collectSecrets, scrubSecrets } from '../shared/secrets.js';
import { loadTransport } from '../transports/index.js';
import type { RemoteEntry, Transport } from '../transports/types.js';
import { parseCommandArgs } from './args.js';
import type { CliIO, Command } from './command.js';
import { EXIT_OK, UsageError } from './errors.js';
import { clockTime } from './format.js';
import { HEARTBEAT_MAX_BYTES, assess, formatClients, isHeartbeatEntry, type ClientReport } from './heartbeats.js';

const DEFAULT_INTERVAL_SEC = 10;

const help = `Usage: pushtask monitor --config FILE [--watch [--interval SEC]] [--json]

Shows which clients are online, from the <name>.heartbeat files they upload into the remote
folder (clients write them when their config has heartbeat: { intervalSec: N }, N > 0). A
heartbeat holds the seconds until the next one is due; a client is offline once now is later
than the file's modification time plus those seconds (pysubtask's rule). A heartbeat whose
content cannot be read or understood is shown as "unknown", with the reason.

Only the config's transport is used (its remoteDir is the folder listed): a client's config
works as it is, and a config for the monitor alone may leave out \`watch\`. Both clocks should
be right (NTP): the modification time is the client's clock when it wrote the heartbeat.

Options:
  --config FILE    the config file whose transport reaches the remote folder
  --watch          check again and again until Ctrl-C (a terminal shows the table in place)
  --interval SEC   seconds between checks with --watch (default ${DEFAULT_INTERVAL_SEC})
  --json           machine-readable: one JSON object (with --watch: one per line)
  --debug          log the transport's work to stderr; stack traces on errors
  -h, --help       show this help

Exit code 1 when the remote folder cannot be listed (without --watch; with --watch the
monitor reports the error and tries again).

Examples:
  pushtask monitor --config server.config.ts
  pushtask monitor --config pushtask.config.ts --watch --interval 30
  pushtask monitor --config server.config.ts --json | jq '.clients[] | select(.state != "online")'
`;

export const command: Command = {
  name: 'monitor',
  summary: 'show which clients are online, from the .heartbeat files in the remote folder',
  help,
  async run(argv, io) {
    const { values } = parseCommandArgs('monitor', argv, {
      config: { type: 'string' },
      watch: { type: 'boolean' },
      interval: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (!values.config) throw new UsageError('--config FILE is required', 'monitor');
    if (values.interval !== undefined && !values.watch) throw new UsageError('--interval only goes with --watch', 'monitor');
    const intervalSec = values.interval === undefined ? DEFAULT_INTERVAL_SEC : Number(values.interval);
    if (!(intervalSec > 0)) throw new UsageError(`--interval: expected seconds > 0, got ${JSON.stringify(values.interval)}`, 'monitor');

    // A monitor-only config needs no watch list: one is filled in that is never used (a file, not a
    // folder, so that no check about drop folders containing the destination applies to it).
    const loaded = await loadConfigFile(path.resolve(io.cwd, values.config), { defaults: { watch: [{ file: 'unused-by-monitor' }] } });
    const heartbeats = await RemoteHeartbeats.open(loaded.resolved, Boolean(values.debug));
    try {
      if (!values.watch) {
        const reports = await heartbeats.check(new AbortController().signal);
        io.out(values.json ? `${JSON.stringify(jsonReport(heartbeats.target, reports), null, 2)}\n` : formatClients(reports, heartbeats.target, Date.now()));
        return EXIT_OK;
      }
      await watchLoop(heartbeats, io, { intervalSec, json: Boolean(values.json) });
      return EXIT_OK;
    } finally {
      await heartbeats.close();
    }
  },
};

function jsonReport(target: string, clients: readonly ClientReport[]) {
  return { checkedAt: new Date().toISOString(), target, clients };
}

async function watchLoop(heartbeats: RemoteHeartbeats, io: CliIO, { intervalSec, json }: { intervalSec: number; json: boolean }): Promise<void> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const tty = Boolean(io.stdout.isTTY) && !json;
  try {
    while (!stop.signal.aborted) {
      let text: string;
      try {
        const reports = await heartbeats.check(stop.signal);
        text = json ? `${JSON.stringify(jsonReport(heartbeats.target, reports))}\n` : formatClients(reports, heartbeats.target, Date.now());
      } catch (error) {
        if (stop.signal.aborted) break;
        const failure = `${clockTime(Date.now())} pushtask monitor: ${errorMessage(error)}; trying again in ${intervalSec} s\n`;
        if (json || !tty) {
          io.err(failure);
          text = '';
        } else {
          text = failure;
        }
      }
      if (tty) io.out(`\x1b[H\x1b[2J${clockTime(Date.now())}  every ${intervalSec} s, Ctrl-C stops\n\n${text}`);
      else if (json) io.out(text);
      else if (text) io.out(`--- ${new Date().toISOString()}\n${text}`);
      await sleep(intervalSec * 1000, stop.signal);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * One connection to the remote folder, kept between checks (reconnected after a failure), and
 * each heartbeat's content cached by name, size and mtime: an unchanged file is not read again.
 */
class RemoteHeartbeats {
  readonly #transport: Transport;
  readonly #timeoutMs: number;
  readonly #secrets: string[];
  readonly #cache = new Map<string, { key: string; text: string }>();
  #connected = false;

  private constructor(transport: Transport, timeoutMs: number, secrets: string[]) {
    this.#transport = transport;
    this.#timeoutMs = timeoutMs;
    this.#secrets = secrets;
  }

  static async open(config: ResolvedConfig, debug: boolean): Promise<RemoteHeartbeats> {
    const secrets = collectSecrets(config);
    const logger = debug ? createLogger({ name: 'cli', level: 'debug', console: true, secrets }) : silentLogger();
    const makeTransport = await loadTransport(config.transport, { logger, stateDir: config.spoolDir });
    const transport = makeTransport();
    if (!transport.list || !transport.read) {
      throw new PushtaskError('REMOTE_READ_FAILED', `The ${config.transport.type} transport cannot list remote folders`);
    }
    return new RemoteHeartbeats(transport, config.operationTimeoutMs, secrets);
  }

  /** Where the heartbeats are read from; never contains a secret. */
  get target(): string {
    return this.#transport.description;
  }

  async check(signal: AbortSignal): Promise<ClientReport[]> {
    try {
      if (!this.#connected) {
        await this.#step(signal, `Connecting to ${this.target}`, (s) => this.#transport.connect(s));
        this.#connected = true;
      }
      const entries = await this.#step(signal, `Listing ${this.target}`, (s) => this.#transport.list!('', s));
      const reports: ClientReport[] = [];
      let readFailed = false;
      for (const entry of entries.filter(isHeartbeatEntry).sort((a, b) => a.name.localeCompare(b.name))) {
        const content = await this.#content(entry, signal).catch((error: unknown) => {
          readFailed = true;
          return { problem: this.#scrub(errorMessage(error)) };
        });
        reports.push(assess(entry, content, Date.now()));
      }
      // The connection may be what failed: the next check starts with a fresh one.
      if (readFailed) await this.#disconnect();
      return reports;
    } catch (error) {
      await this.#disconnect();
      const info = toErrorInfo(error);
      throw new PushtaskError('REMOTE_READ_FAILED', this.#scrub(info.message), { cause: error });
    }
  }

  async #content(entry: RemoteEntry, signal: AbortSignal): Promise<{ text: string }> {
    const key = `${entry.size}:${entry.mtime.getTime()}`;
    const cached = this.#cache.get(entry.name);
    if (cached?.key === key) return { text: cached.text };
    const data = await this.#step(signal, `Reading ${entry.name}`, (s) => this.#transport.read!(entry.name, HEARTBEAT_MAX_BYTES, s));
    const text = data.toString('utf8');
    this.#cache.set(entry.name, { key, text });
    return { text };
  }

  #step<T>(signal: AbortSignal, what: string, operation: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return withTimeout(operation, this.#timeoutMs, signal, what);
  }

  #scrub(text: string): string {
    return scrubSecrets(text, this.#secrets);
  }

  async #disconnect(): Promise<void> {
    this.#connected = false;
    await this.#transport.close();
  }

  async close(): Promise<void> {
    await this.#disconnect();
  }
}
