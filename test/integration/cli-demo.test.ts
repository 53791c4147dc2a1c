/**
 * The `pushtask` CLI as a user runs it: a real process (TypeScript through tsx) in a temp working
 * directory, driven through stdin and signals.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const VERSION = (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Started {
  child: ReturnType<typeof spawn>;
  output: () => string;
  done: Promise<Run>;
}

function startCli(args: string[], cwd: string, timeoutMs = 60_000): Started {
  const child = spawn(process.execPath, ['--import', TSX, CLI, ...args], { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<Run>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, output: () => stdout, done };
}

function runCli(args: string[], cwd: string, input = ''): Promise<Run> {
  const started = startCli(args, cwd);
  started.child.stdin!.end(input);
  return started.done;
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

let cwd: string;
beforeEach(() => {
  cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-cli-'));
});
afterEach(() => {
  fs.rmSync(cwd, { recursive: true, force: true });
});

// Each test starts one to three Node processes through tsx; generous on a busy two-core machine.
describe('pushtask demo (zero setup, commands from a pipe)', { timeout: 90_000 }, () => {
  it('delivers byte-identical copies, prints notify and upload lines, and leaves a status for `status`', async () => {
    const run = await runCli(['demo'], cwd, 'a\n0\n1\nc\ns\nx\n');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);

    const local = path.join(cwd, 'demo-run', 'logs');
    const remote = path.join(cwd, 'demo-run', 'remote');
    for (const name of ['test1.mrk', 'test1.csv']) {
      expect(fs.readFileSync(path.join(remote, name))).toEqual(fs.readFileSync(path.join(local, name)));
    }
    // Each notify appended a `timestamp,counter` line first: a → lines 1 (mrk) and 2 (csv), 0 → 3, 1 → 4.
    expect(fs.readFileSync(path.join(local, 'test1.mrk'), 'utf8')).toMatch(/^\S+Z,1\n\S+Z,3\n$/);
    expect(fs.readFileSync(path.join(local, 'test1.csv'), 'utf8')).toMatch(/^timestamp,counter\n\S+Z,2\n\S+Z,4\n$/);

    expect(run.stdout).toMatch(/Enter cmd: a\n/);
    expect(run.stdout).toMatch(/notify +\[0\] logs\/test1\.mrk: passed on/);
    expect(run.stdout).toMatch(/notify +\[1\] logs\/test1\.csv: passed on \(first notify\)/);
    expect(run.stdout).toMatch(/uploaded +logs\/test1\.csv → test1\.csv/);
    expect(run.stdout).toMatch(/uploaded +logs\/test1\.mrk → test1\.mrk/);
    expect(run.stdout).toMatch(/check pending: /);
    expect(run.stdout).toMatch(/\nstopped\n$/);

    const json = await runCli(['status', '--json'], cwd);
    expect(json.code).toBe(0);
    const status = JSON.parse(json.stdout) as { running: boolean; counters: { uploads: number }; files: Record<string, unknown> };
    expect(status.running).toBe(false);
    expect(status.counters.uploads).toBeGreaterThanOrEqual(2);
    expect(Object.keys(status.files)).toContain(path.join(local, 'test1.csv'));

    const human = await runCli(['status'], cwd);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/Agent: +stopped/);
    expect(human.stdout).toMatch(/logs\/test1\.csv\n +last upload .+ → test1\.csv/);
  });

  it('explains a drop-folder index and an unknown command, and stops at the end of input', async () => {
    const run = await runCli(['demo'], cwd, '2\nzz\n9\n');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/2 is the drop folder logs\/watch_all_in_here\/: copy a file into it/);
    expect(run.stdout).toMatch(/unknown command "zz"; h shows the commands/);
    expect(run.stdout).toMatch(/error: notifyIndex\(9\): no watched file/);
    expect(run.stdout).toMatch(/\nstopped\n$/);
  });
});

describe('pushtask watch', { timeout: 90_000 }, () => {
  it('exits non-zero naming the bad fields of an invalid config, without a stack trace', async () => {
    fs.writeFileSync(path.join(cwd, 'bad.ts'), "export default { watch: [{ file: 42 }], intervalMs: 'fast' };\n");
    const run = await runCli(['watch', '--config', 'bad.ts'], cwd);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/Invalid pushtask configuration in .*bad\.ts/);
    expect(run.stderr).toMatch(/watch\.0\.file: .*given 42/);
    expect(run.stderr).toMatch(/intervalMs: .*given "fast"/);
    expect(run.stderr).toMatch(/"Configuration reference" of pushtask.s README\.md/);
    expect(run.stderr).not.toMatch(/config\.example\.ts/); // the installed package has none
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('delivers drop-folder files and stops gracefully with exit code 0 on SIGTERM', async () => {
    fs.mkdirSync(path.join(cwd, 'drop'));
    fs.writeFileSync(
      path.join(cwd, 'pushtask.config.ts'),
      "export default { watch: [{ dir: 'drop', stableMs: 100 }], transport: { type: 'local', dir: 'remote' }, intervalMs: 200, log: { console: false } };\n",
    );
    const watch = startCli(['watch', '--config', 'pushtask.config.ts'], cwd);
    await waitFor(() => watch.output().includes('Ctrl-C stops'), 'the watch to start');
    fs.writeFileSync(path.join(cwd, 'drop', 'a.txt'), 'dropped\n');
    await waitFor(() => fs.existsSync(path.join(cwd, 'remote', 'a.txt')), 'the dropped file to be delivered');
    watch.child.kill('SIGTERM');
    const run = await watch.done;
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/SIGTERM: stopping gracefully[^]*\nstopped\n$/);
    expect(fs.readFileSync(path.join(cwd, 'remote', 'a.txt'), 'utf8')).toBe('dropped\n');
  });

  it('requires --config', async () => {
    const run = await runCli(['watch'], cwd);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--config FILE is required/);
  });
});

describe('pushtask status', () => {
  it('says clearly when there is no status file', async () => {
    const run = await runCli(['status', '--spool', 'nowhere'], cwd);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/No status yet: .*nowhere\/status\.json does not exist/);
  });
});

describe('pushtask --version / --help', { timeout: 90_000 }, () => {
  it('prints the package version', async () => {
    const run = await runCli(['--version'], cwd);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`${VERSION}\n`);
  });

  it('prints help, per command with examples; an unknown command gets help and exit code 2', async () => {
    const help = await runCli(['--help'], cwd);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: pushtask <command>/);
    for (const name of ['demo', 'watch', 'status']) expect(help.stdout).toMatch(new RegExp(`\\n  ${name} +\\S`));

    const demoHelp = await runCli(['demo', '--help'], cwd);
    expect(demoHelp.code).toBe(0);
    expect(demoHelp.stdout).toMatch(/^Usage: pushtask demo[^]*Examples:\n  pushtask demo\n/);

    const unknown = await runCli(['frobnicate'], cwd);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'frobnicate'[^]*Usage: pushtask <command>/);
  });
});
