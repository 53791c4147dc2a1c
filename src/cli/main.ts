/** Dispatches `pushtask <command> ...` and turns every failure into a message and an exit code. */
import type { CliIO } from './command.js';
import { findCommand, mainHelp } from './commands.js';
import { EXIT_OK, EXIT_USAGE, reportError } from './errors.js';
import { packageVersion } from './version.js';

export async function main(argv: string[], io: CliIO): Promise<number> {
  const debug = argv.includes('--debug');
  try {
    const [first, ...rest] = argv;
    if (first === '--version' || first === '-v') {
      io.out(`${packageVersion()}\n`);
      return EXIT_OK;
    }
    if (first === undefined || first === '--help' || first === '-h') {
      io.out(mainHelp());
      return EXIT_OK;
    }
    if (first === 'help') {
      const topic = rest[0];
      if (topic === undefined) {
        io.out(mainHelp());
        return EXIT_OK;
      }
      const entry = findCommand(topic);
      if (!entry) return unknownCommand(topic, io);
      io.out((await entry.load()).help);
      return EXIT_OK;
    }
    const entry = findCommand(first);
    if (!entry) return unknownCommand(first, io);
    const command = await entry.load();
    if (rest.includes('--help') || rest.includes('-h')) {
      io.out(command.help);
      return EXIT_OK;
    }
    return await command.run(rest, io);
  } catch (error) {
    return reportError(error, { debug, write: io.err });
  }
}

function unknownCommand(name: string, io: CliIO): number {
  const what = name.startsWith('-') ? `unknown option '${name}'` : `unknown command '${name}'`;
  io.err(`pushtask: ${what}\n\n${mainHelp()}`);
  return EXIT_USAGE;
}
