/**
 * Argument parsing shared by the commands: node:util parseArgs in strict mode, with `--help` and
 * `--debug` accepted everywhere and parse errors turned into usage errors (exit code 2).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

const COMMON = {
  help: { type: 'boolean', short: 'h' },
  debug: { type: 'boolean' },
} as const satisfies Options;

/** What parseArgs returns for these options (spelled out: the declaration build needs a name). */
export type ParsedArgs<O extends Options> = ReturnType<
  typeof parseArgs<{ args: string[]; options: typeof COMMON & O; strict: true; allowPositionals: false }>
>;

export function parseCommandArgs<const O extends Options>(command: string, argv: string[], options: O): ParsedArgs<O> {
  try {
    return parseArgs({ args: argv, options: { ...COMMON, ...options }, strict: true, allowPositionals: false });
  } catch (error) {
    // parseArgs messages are already specific ("Unknown option '--x'"); drop its generic advice.
    const message = error instanceof Error ? error.message.replace(/\. (To specify|This command) .*$/s, '') : String(error);
    throw new UsageError(message, command);
  }
}
