/** The shape every CLI command module exports, and the I/O it is given (a seam for tests). */
export interface CliIO {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  out: (text: string) => void;
  err: (text: string) => void;
  cwd: string;
}

export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Full `--help` text, examples included. */
  help: string;
  /** Resolves with the process exit code. */
  run: (argv: string[], io: CliIO) => Promise<number>;
}

export function processIO(): CliIO {
  return {
    stdin: process.stdin,
    stdout: process.stdout,
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
    cwd: process.cwd(),
  };
}
