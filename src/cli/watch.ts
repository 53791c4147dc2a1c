/** `pushtask watch`: the agent without an application around it, e.g. for drop folders. */
import path from 'node:path';
import { loadConfigFile } from '../config/load.js';
import { TaskMaster } from '../master/TaskMaster.js';
import { parseCommandArgs } from './args.js';
import type { Command } from './command.js';
import { EXIT_OK, UsageError } from './errors.js';
import { describeTarget } from './format.js';

const help = `Usage: pushtask watch --config FILE

Runs the agent headless: archives expired files, uploads residual data, then delivers every
notified file and every file dropped into a watched folder until it is stopped. SIGINT (Ctrl-C)
or SIGTERM stops it gracefully: the upload in flight finishes (up to gracefulTimeoutMs), the rest
stays in the spool for the next start. A second signal exits at once.

Logging follows the config's \`log\` section (console and log files).

Options:
  --config FILE  the config file (TypeScript: export default defineConfig({ ... }))
  --debug        show stack traces on errors
  -h, --help     show this help

Examples:
  pushtask watch --config pushtask.config.ts
  pushtask watch --config /etc/pushtask/logger.ts &
  pushtask status --config pushtask.config.ts
`;

export const command: Command = {
  name: 'watch',
  summary: 'run the agent headless from a config file until Ctrl-C / SIGTERM',
  help,
  async run(argv, io) {
    const { values } = parseCommandArgs('watch', argv, { config: { type: 'string' } });
    if (!values.config) throw new UsageError('--config FILE is required', 'watch');
    const loaded = await loadConfigFile(path.resolve(io.cwd, values.config));
    const master = new TaskMaster(loaded.config, { cwd: loaded.cwd });

    // Listen before start() so a signal during start-up is not lost (it would kill us outright).
    const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
      const onSignal = (signal: NodeJS.Signals) => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        // A second signal means "now": the subtask sees the channel close and stops by itself.
        process.once('SIGINT', () => process.exit(130));
        process.once('SIGTERM', () => process.exit(143));
        resolve(signal);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    });

    await master.start();
    const { watch } = master.config;
    const files = watch.filter((entry) => entry.kind === 'file').length;
    io.out(
      `pushtask watch: ${files} file(s) and ${watch.length - files} drop folder(s) → ${describeTarget(master.config)}; ` +
        `spool ${master.config.spoolDir}. Ctrl-C stops.\n`,
    );
    const signal = await stopSignal;
    io.out(`${signal}: stopping gracefully (a second signal exits at once)\n`);
    await master.stop({ forceKill: false });
    io.out('stopped\n');
    return EXIT_OK;
  },
};
