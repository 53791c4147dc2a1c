/** Command dispatch and error reporting, in-process with a captured I/O. */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { CliIO } from '../../src/cli/command.js';
import { COMMANDS } from '../../src/cli/commands.js';
import { main } from '../../src/cli/main.js';
import { reportError, UsageError } from '../../src/cli/errors.js';
import { ConfigError } from '../../src/config/index.js';
import { PushtaskError } from '../../src/shared/errors.js';
import { packageVersion } from '../../src/cli/version.js';

function captured(): CliIO & { stdout_: () => string; stderr_: () => string } {
  let out = '';
  let err = '';
  return {
    stdin: new PassThrough(),
    stdout: new PassThrough(),
    out: (text) => void (out += text),
    err: (text) => void (err += text),
    cwd: process.cwd(),
    stdout_: () => out,
    stderr_: () => err,
  };
}

describe('main', () => {
  it('prints the version and the help', async () => {
    const io = captured();
    expect(await main(['--version'], io)).toBe(0);
    expect(io.stdout_()).toBe(`${packageVersion()}\n`);
    expect(packageVersion()).toMatch(/^\d+\.\d+\.\d+/);

    const help = captured();
    expect(await main([], help)).toBe(0);
    expect(help.stdout_()).toMatch(/^Usage: pushtask <command>/);
  });

  it('gives help per command, also as `help <command>`', async () => {
    for (const argv of [['status', '--help'], ['help', 'status'], ['status', '-h']]) {
      const io = captured();
      expect(await main(argv, io)).toBe(0);
      expect(io.stdout_()).toMatch(/^Usage: pushtask status [^]*Examples:/);
    }
  });

  it('has --help with a usage line and examples for every command, each listed in the main help', async () => {
    const main_ = captured();
    await main(['--help'], main_);
    for (const name of Object.keys(COMMANDS)) {
      const io = captured();
      expect(await main([name, '--help'], io)).toBe(0);
      expect(io.stdout_(), name).toMatch(new RegExp(`^Usage: pushtask ${name}[^]*\\nExamples:\\n {2}\\S`));
      expect(main_.stdout_()).toMatch(new RegExp(`\\n {2}${name} +\\S`));
    }
    expect(Object.keys(COMMANDS)).toEqual(expect.arrayContaining(['demo', 'watch', 'status', 'monitor', 'dropbox-auth']));
  });

  it('exits with 2 and the help on an unknown command or option', async () => {
    for (const argv of [['nope'], ['--nope'], ['toString']]) {
      const io = captured();
      expect(await main(argv, io)).toBe(2);
      expect(io.stderr_()).toMatch(/^pushtask: unknown (command|option) '[^']+'\n\nUsage: pushtask/);
    }
  });

  it('reports a bad option of a command as a usage error', async () => {
    const io = captured();
    expect(await main(['status', '--frobnicate'], io)).toBe(2);
    expect(io.stderr_()).toBe("pushtask: Unknown option '--frobnicate'\nRun `pushtask status --help` for usage.\n");
  });
});

describe('reportError', () => {
  const report = (error: unknown, debug = false) => {
    let text = '';
    const code = reportError(error, { debug, write: (t) => (text += t) });
    return { code, text };
  };

  it('prints one line of cause and one of advice, no stack', () => {
    const { code, text } = report(new PushtaskError('SUBTASK_START_FAILED', 'The subtask failed: boom\nmore detail'));
    expect(code).toBe(1);
    expect(text).toBe('pushtask: The subtask failed: boom\nSee the subtask log file (log.dir in the config) or run again with --debug.\n');
  });

  it('lists every problem of a ConfigError', () => {
    const { text } = report(new ConfigError(['watch.0.file: expected string; given 42', 'intervalMs: too small'], 'x.ts'));
    expect(text).toMatch(/in x\.ts:\n {2}- watch\.0\.file: .*\n {2}- intervalMs: too small\nFix the field/);
  });

  it('adds the stack with --debug', () => {
    const { text } = report(new Error('plain'), true);
    expect(text).toMatch(/^pushtask: plain\nError: plain\n\s+at /);
    expect(report(new UsageError('bad', 'watch')).code).toBe(2);
  });
});
