/** `pushtask watch`: the agent without an application around it, e.g. for drop folders. */
import path from 'node:path';
import { loadConfigFile } from '../config/load.js';
import { parseCommandArgs } from './args.js';
import type { Command } from './command.js';
import { dryRun } from './dryRun.js';
import { UsageError } from './errors.js';
import { WatchSession } from './watchSession.js';

const help = `Usage: pushtask watch --config FILE [--dry-run] [--plain] [--metrics-port N [--metrics-host ADDR]]

Runs the agent headless: archives expired files that were delivered (\`archive: false\` turns
it off), uploads residual data, then delivers every notified file and every file dropped into a
watched folder until it is stopped.

Signals:
  SIGINT (Ctrl-C), SIGTERM  stop gracefully: the upload in flight finishes (up to
                            gracefulTimeoutMs), the rest stays in the spool for the next start.
                            A second signal exits at once.
  SIGHUP                    reload the config file. An invalid file is reported (naming the
                            field) and the agent goes on with the config it has; a valid one
                            restarts the agent with it. Queued files stay in the spool.
  SIGUSR1                   reopen the log files (after logrotate moved them away); pushtask
                            also rotates them itself by size (log.maxBytes, log.keepFiles).

Output: in a terminal, one line per event and, below them, a live line per upload (bytes, rate)
and the queue; the log lines go to the log files only. Without a terminal (a service, a pipe),
the config's \`log\` section decides (console and files), plus a plain progress line for long
uploads, never a control character.

Options:
  --config FILE  the config file (TypeScript: export default defineConfig({ ... }))
  --dry-run      check the config, show what would be watched and where it would go, connect
                 to the destination once (and list it); uploads nothing. Exit code 1 if the
                 connection fails.
  --plain        plain lines even in a terminal (no live area)
  --metrics-port N     serve the agent's Prometheus metrics on http://127.0.0.1:N/metrics
                       (uploads, bytes, failures by code, queue, oldest pending, connection,
                       retry state, notifies, subtask restarts); nothing is served without it
  --metrics-host ADDR  address for --metrics-port (default 127.0.0.1: this machine only;
                       0.0.0.0 or :: for every interface, e.g. a Prometheus elsewhere)
  --debug        show stack traces on errors (with --dry-run: the transport's log)
  -h, --help     show this help

Examples:
  pushtask watch --config pushtask.config.ts
  pushtask watch --config /etc/pushtask/config.ts --dry-run
  pushtask watch --config pushtask.config.ts --metrics-port 9464
  kill -HUP <pid>     # after editing the config: reload it
  pushtask status --config pushtask.config.ts
`;

export const command: Command = {
  name: 'watch',
  summary: 'run the agent headless from a config file until Ctrl-C / SIGTERM (SIGHUP reloads)',
  help,
  async run(argv, io) {
    const { values } = parseCommandArgs('watch', argv, {
      config: { type: 'string' },
      'dry-run': { type: 'boolean' },
      plain: { type: 'boolean' },
      'metrics-port': { type: 'string' },
      'metrics-host': { type: 'string' },
    });
    if (!values.config) throw new UsageError('--config FILE is required', 'watch');
    const portText = values['metrics-port'];
    if (values['metrics-host'] !== undefined && portText === undefined) throw new UsageError('--metrics-host goes with --metrics-port', 'watch');
    const port = portText === undefined ? undefined : Number(portText);
    if (port !== undefined && !(/^\d{1,5}$/.test(portText!) && port <= 65_535)) {
      throw new UsageError(`--metrics-port: expected a port number (0-65535), got ${JSON.stringify(portText)}`, 'watch');
    }
    const loaded = await loadConfigFile(path.resolve(io.cwd, values.config));
    if (values['dry-run']) return dryRun(loaded, io, { debug: Boolean(values.debug) });
    const metrics = port === undefined ? undefined : { port, ...(values['metrics-host'] ? { host: values['metrics-host'] } : {}) };
    return new WatchSession(loaded, { io, live: Boolean(io.stdout.isTTY) && !values.plain, ...(metrics ? { metrics } : {}) }).run();
  },
};
