/** `pushtask status`: what the agent of a spool is doing, from its status.json. */
import path from 'node:path';
import { loadConfigFile } from '../config/load.js';
import { parseCommandArgs } from './args.js';
import type { Command } from './command.js';
import { demoSpoolDir } from './demoConfig.js';
import { EXIT_FAILURE, EXIT_OK, UsageError } from './errors.js';
import { formatStatus, missingStatusMessage, readStatus } from './statusFormat.js';

/** The demo's spool relative to where the command runs, computed from the demo's own config. */
const DEMO_SPOOL = path.relative(process.cwd(), demoSpoolDir(process.cwd()));

const help = `Usage: pushtask status [--config FILE | --spool DIR] [--json]

Prints the agent's status (status.json in its spool folder): connection state, queue, the upload
in flight, counters, the last error, and per file the last upload and last error.

Options:
  --config FILE  read the spool folder from this config file
  --spool DIR    read status.json from this spool folder
  --json         print the raw status.json
  --debug        show stack traces on errors
  -h, --help     show this help

Without --config or --spool it reads the zero-setup demo's spool (./${DEMO_SPOOL}).
Exit code 1 when there is no status file.

Examples:
  pushtask status
  pushtask status --config pushtask.config.ts
  pushtask status --spool /var/lib/logger/upload/sftp --json
`;

export const command: Command = {
  name: 'status',
  summary: "print the agent's status (queue, connection, last uploads and errors)",
  help,
  async run(argv, io) {
    const { values } = parseCommandArgs('status', argv, {
      config: { type: 'string' },
      spool: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (values.config && values.spool) throw new UsageError('give --config or --spool, not both', 'status');
    let spoolDir: string;
    let base = io.cwd;
    if (values.config) {
      const loaded = await loadConfigFile(path.resolve(io.cwd, values.config));
      spoolDir = loaded.resolved.spoolDir;
      base = loaded.cwd;
    } else {
      spoolDir = values.spool ? path.resolve(io.cwd, values.spool) : demoSpoolDir(io.cwd);
    }
    const read = readStatus(spoolDir);
    if (read.kind === 'missing') {
      io.err(missingStatusMessage(read.file));
      return EXIT_FAILURE;
    }
    io.out(values.json ? `${read.raw.trimEnd()}\n` : `Status of ${read.file}\n${formatStatus(read.status, { base })}`);
    return EXIT_OK;
  },
};
