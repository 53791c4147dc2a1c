/**
 * The command list. Modules load on use, so `pushtask --help` and `--version` stay instant and
 * never pull in the agent.
 */
import type { Command } from './command.js';

export interface CommandEntry {
  summary: string;
  load: () => Promise<Command>;
}

export const COMMANDS: Record<string, CommandEntry> = {
  demo: {
    summary: "interactive demo: pysubtask's REPL, zero setup, over SFTP to an embedded server",
    load: async () => (await import('./demo.js')).command,
  },
  watch: {
    summary: 'run the agent headless from a config file until Ctrl-C / SIGTERM (SIGHUP reloads)',
    load: async () => (await import('./watch.js')).command,
  },
  'dropbox-auth': {
    summary: 'connect a Dropbox account (PKCE) and print the refresh token for the config',
    load: async () => (await import('./dropboxAuth.js')).command,
  },
  status: {
    summary: "print the agent's status (queue, connection, last uploads and errors)",
    load: async () => (await import('./status.js')).command,
  },
  monitor: {
    summary: 'the fleet: which clients are online, behind or failing (table, JSON, --check, --serve page and /metrics)',
    load: async () => (await import('./monitor.js')).command,
  },
};

export function findCommand(name: string): CommandEntry | undefined {
  return Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
}

export function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length)) + 2;
  const list = Object.entries(COMMANDS)
    .map(([name, entry]) => `  ${name.padEnd(width)}${entry.summary}`)
    .join('\n');
  return `Usage: pushtask <command> [options]

pushtask delivers data files to a remote folder: notify a file, a separate subtask snapshots it
and uploads it reliably.

Commands:
${list}

Options:
  -h, --help     show help (also: pushtask <command> --help, pushtask help <command>)
  -v, --version  print the version
  --debug        show stack traces on errors

Examples:
  pushtask demo
  pushtask watch --config pushtask.config.ts
  pushtask watch --config pushtask.config.ts --dry-run
  pushtask status --json
  pushtask monitor --config pushtask.config.ts --watch
`;
}
