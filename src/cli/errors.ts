/**
 * How the CLI reports failures: one line naming the cause and one saying what to do; the stack
 * only with `--debug`, because users of a command line want the fix, not our call chain.
 */
import { ConfigError } from '../config/resolve.js';
import { PushtaskError } from '../shared/errors.js';

/** Wrong use of the command line itself; exits with 2 like most Unix tools. */
export class UsageError extends Error {
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** What to do next, for errors whose message says only what went wrong ('' = it says both). */
const HINTS: Partial<Record<string, string>> = {
  SPOOL_LOCKED: '',
  CONFIG_INVALID: "Fix the field(s) listed above; every field is described in the \"Configuration reference\" of pushtask's README.md.",
  // Each load failure says what to do in its own message (config/load.ts).
  CONFIG_LOAD_FAILED: '',
  SUBTASK_START_FAILED: 'See the subtask log file (log.dir in the config) or run again with --debug.',
  UNKNOWN_FILE: 'Use a path (or index) of a `file` entry of the config.',
};

export interface ReportOptions {
  debug: boolean;
  write: (text: string) => void;
}

export function reportError(error: unknown, { debug, write }: ReportOptions): number {
  if (error instanceof UsageError) {
    const help = error.command ? `pushtask ${error.command} --help` : 'pushtask --help';
    write(`pushtask: ${error.message}\nRun \`${help}\` for usage.\n`);
    return EXIT_USAGE;
  }
  const message = error instanceof Error ? error.message : String(error);
  const code = error instanceof PushtaskError ? error.code : undefined;
  const hint = (code ? HINTS[code] : undefined) ?? (debug ? '' : 'Run again with --debug for details.');
  // A ConfigError lists one problem per line; every other message is kept to its first line.
  const shown = error instanceof ConfigError ? message : (message.split('\n')[0] ?? message);
  write(`pushtask: ${shown}\n${hint ? `${hint}\n` : ''}`);
  if (debug && error instanceof Error && error.stack) write(`${error.stack}\n`);
  return EXIT_FAILURE;
}
