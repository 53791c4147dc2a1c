/**
 * The `pushtask` command as a user runs it: a real process (TypeScript through tsx), output
 * collected, stopped by signals. `underTerminal` runs it in a pseudo-terminal (util-linux `script`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
export const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunningCli {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves once `text` (or a match of it) appeared on stdout; rejects when the process ends first. */
  waitForOutput: (text: string | RegExp, timeoutMs?: number) => Promise<void>;
  done: Promise<CliRun>;
  /** Started in a process group of its own (see ProcessOptions.group). */
  grouped: boolean;
}

/** The argv that runs the CLI through tsx. */
export function cliArgv(args: string[]): string[] {
  return [process.execPath, '--import', TSX, CLI, ...args];
}

export function startCli(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): RunningCli {
  const [command, ...rest] = cliArgv(args);
  return startProcess(command!, rest, options);
}

export interface ProcessOptions {
  cwd: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /**
   * Runs the command in a process group of its own, and the time-out kills the whole group: for
   * wrappers such as npx, whose child would otherwise outlive them (holding the output pipes open).
   */
  group?: boolean;
}

/** Any command (no shell), with the same output collection and waiting as the CLI runs above. */
export function startProcess(command: string, args: string[], options: ProcessOptions): RunningCli {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'], detached: options.group ?? false });
  return track(child, options.timeoutMs, options.group);
}

/** SIGKILL to the process, or to its whole group when it was started with `group`. */
export function killHard(running: RunningCli): void {
  const pid = running.child.pid;
  if (running.grouped && pid !== undefined) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // The group is gone already.
    }
  } else running.child.kill('SIGKILL');
}

export function runProcess(command: string, args: string[], options: ProcessOptions & { input?: string }): Promise<CliRun> {
  const started = startProcess(command, args, options);
  started.child.stdin!.end(options.input ?? '');
  return started.done;
}

export function runCli(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; input?: string }): Promise<CliRun> {
  const [command, ...rest] = cliArgv(args);
  return runProcess(command!, rest, options);
}

/** `script` from util-linux, which gives a command a pseudo-terminal; null when missing. */
export function scriptCommand(): string | null {
  const found = spawnSync('script', ['--version'], { encoding: 'utf8' });
  return found.status === 0 && /util-linux/.test(found.stdout) ? 'script' : null;
}

/** Runs the CLI with a pseudo-terminal as its stdin/stdout/stderr; everything it shows comes back on stdout. */
export function startCliUnderTerminal(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; columns?: number; timeoutMs?: number }): RunningCli {
  const quoted = cliArgv(args).map((arg) => `'${arg.replace(/'/g, `'\\''`)}'`).join(' ');
  // stty gives the terminal a size (script's pty has none without a real terminal around it).
  const shell = `stty cols ${options.columns ?? 120} rows 40; exec ${quoted}`;
  return track(spawn('script', ['-qfec', shell, '/dev/null'], { cwd: options.cwd, env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] }), options.timeoutMs);
}

function track(child: ChildProcess, timeoutMs = 60_000, grouped = false): RunningCli {
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => killHard(running), timeoutMs);
  let ended = false;
  const done = new Promise<CliRun>((resolve) => {
    child.on('close', (code, signal) => {
      ended = true;
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    // A command that cannot be started (ENOENT) ends here, with the reason on stderr.
    child.on('error', (err) => {
      if (child.pid !== undefined) return;
      ended = true;
      clearTimeout(timer);
      stderr += `cannot start ${child.spawnfile}: ${err.message}\n`;
      resolve({ code: null, signal: null, stdout, stderr });
    });
  });
  const waitForOutput = async (text: string | RegExp, waitMs = 30_000) => {
    const deadline = Date.now() + waitMs;
    const seen = () => (typeof text === 'string' ? stdout.includes(text) : text.test(stdout));
    while (!seen()) {
      if (ended) throw new Error(`The command ended before printing ${String(text)}.\nstdout:\n${stdout}\nstderr:\n${stderr}`);
      if (Date.now() > deadline) throw new Error(`Timed out waiting for ${String(text)}.\nstdout:\n${stdout}\nstderr:\n${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const running: RunningCli = { child, stdout: () => stdout, stderr: () => stderr, waitForOutput, done, grouped };
  return running;
}
