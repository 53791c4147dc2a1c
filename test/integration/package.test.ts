/**
 * The package as a new user gets it: `npm pack` (which runs prepare, the build) in a clean clone
 * of this commit, the tarball installed into a fresh project in a temp folder, then used there:
 * TypeScript consumers under three module resolutions, a CommonJS consumer, and the CLI through
 * npx. Slow (a build and an `npm install`), so one pack and one install serve every test here.
 *
 * A clean clone, not the working tree: it catches what a checkout with leftovers hides (a stale
 * dist/, a file never committed). Uncommitted changes are therefore not in the tarball; the test
 * says so when there are any.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killHard, runProcess, startProcess, type CliRun, type RunningCli } from '../helpers/cli.js';
import { createWorkspace, waitFor, type Workspace } from '../helpers/workspace.js';

const ROOT = process.cwd();
const OWN = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string; devDependencies: Record<string, string> };
const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');

function gitCheckout(): string | null {
  const top = spawnSync('git', ['rev-parse', '--show-toplevel'], { cwd: ROOT, encoding: 'utf8' });
  if (top.error) return `git is not installed (${top.error.message})`;
  if (top.status !== 0 || path.resolve(top.stdout.trim()) !== ROOT) return `${ROOT} is not the top of a git checkout`;
  return null;
}
const skipReason = gitCheckout();
if (skipReason) console.warn(`Skipping the packed-package test (it packs from a clean clone): ${skipReason}.`);

/**
 * The environment of a user's shell: none of the npm_* variables `npm test` sets for its own
 * script (package name, lifecycle, local prefix), which would leak this project into the nested
 * npm runs. npm_config_* settings given from outside (such as nodedir in CI) stay.
 */
function userEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (/^npm_(package|lifecycle)_|^npm_config_local_prefix$|^npm_command$|^INIT_CWD$/i.test(key)) delete env[key];
  }
  return env;
}

async function run(command: string, args: string[], cwd: string, input = ''): Promise<CliRun> {
  const result = await runProcess(command, args, { cwd, env: userEnv(), input, timeoutMs: 240_000 });
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} (in ${cwd}) exited ${result.code ?? result.signal}:\n${result.stdout}\n${result.stderr}`);
  return result;
}

let ws: Workspace;
let app: string;
let packedFiles: string[];
const running: RunningCli[] = [];

/**
 * `npx pushtask …` as a user types it; --no-install so that a broken install fails here instead
 * of fetching whatever the registry has under that name. npx runs the command in a child of its
 * own, hence the process group (a kill reaches both).
 */
function npx(args: string[]): RunningCli {
  const started = startProcess('npx', ['--no-install', 'pushtask', ...args], { cwd: app, env: userEnv(), timeoutMs: 90_000, group: true });
  running.push(started);
  return started;
}

describe.skipIf(skipReason !== null)('the packed package, installed into a fresh project', { timeout: 120_000 }, () => {
  beforeAll(async () => {
    ws = createWorkspace('pushtask-package-');
    const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
    if (dirty) console.warn('The packed-package test packs the last commit; uncommitted changes are not in the tarball.');

    await run('git', ['clone', '--quiet', ROOT, ws.path('clone')], ws.dir);
    // The clone borrows this checkout's node_modules for its build tools instead of installing them again.
    fs.symlinkSync(path.join(ROOT, 'node_modules'), ws.path('clone/node_modules'), 'dir');
    const pack = await run('npm', ['pack', '--json', '--pack-destination', ws.dir], ws.path('clone'));
    const [packed] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
    packedFiles = packed!.files.map((file) => file.path);

    app = ws.path('app');
    ws.write('app/package.json', JSON.stringify({ name: 'pushtask-consumer', version: '1.0.0', private: true, type: 'module' }, null, 2));
    // @types/node as this project pins it: the oldest Node line pushtask supports.
    await run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', path.join(ws.dir, packed!.filename), `@types/node@${OWN.devDependencies['@types/node']}`],
      app,
    );
  }, 400_000);

  afterAll(async () => {
    for (const started of running) {
      killHard(started);
      await started.done;
    }
    ws?.cleanup();
  });

  it('holds the built code, LICENSE and CHANGELOG, and no sources or source maps', () => {
    for (const file of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'config.example.ts', 'dist/index.js', 'dist/index.d.ts', 'dist/cli.js', 'dist/require.cjs', 'web/index.html']) {
      expect(packedFiles).toContain(file);
    }
    expect(packedFiles.filter((file) => !/^(dist|deploy|web)\/|^[^/]+$/.test(file))).toEqual([]);
    expect(packedFiles.filter((file) => file.endsWith('.map'))).toEqual([]);
    const installed = ws.path('app/node_modules/pushtask/dist');
    const mapComments = fs
      .readdirSync(installed, { recursive: true, encoding: 'utf8' })
      .filter((file) => /\.c?js$/.test(file) && fs.readFileSync(path.join(installed, file), 'utf8').includes('sourceMappingURL'));
    expect(mapComments).toEqual([]);
  });

  // Three compiler runs: a minute on a quiet machine, several on a loaded one.
  it('type-checks an ESM TypeScript consumer under node16, nodenext and bundler resolution', { timeout: 600_000 }, async () => {
    ws.write(
      'app/consumer.ts',
      `import { TaskMaster, defineConfig, PushtaskError, type UploadedEvent } from 'pushtask';

const master = new TaskMaster(defineConfig({ watch: [{ file: 'data.csv', burstMode: true }], transport: { type: 'local', dir: 'remote' } }));
master.on('uploaded', (event: UploadedEvent) => {
  const bytes: number = event.bytes;
  console.log(bytes);
});
export const code: string = new PushtaskError('CONFIG_INVALID', 'x').code;
// Types that collapsed to \`any\` (a declaration that cannot be resolved) would make these unused.
// @ts-expect-error an unknown transport type
defineConfig({ watch: [{ file: 'a' }], transport: { type: 'carrier-pigeon' } });
// @ts-expect-error notify takes a path
master.notify(42);
await master.stop();
`,
    );
    const settings = {
      node16: { module: 'node16', moduleResolution: 'node16' },
      nodenext: { module: 'nodenext', moduleResolution: 'nodenext' },
      bundler: { module: 'esnext', moduleResolution: 'bundler' },
    };
    for (const [name, resolution] of Object.entries(settings)) {
      // Once with skipLibCheck off, so pushtask's declarations are checked too (a type from a
      // devDependency would show up as an unresolved import); only once, it takes 3-4 times longer.
      const compilerOptions = { ...resolution, target: 'es2022', strict: true, noEmit: true, skipLibCheck: name !== 'nodenext', types: ['node'] };
      ws.write(`app/tsconfig.${name}.json`, JSON.stringify({ compilerOptions, files: ['consumer.ts'] }, null, 2));
      const result = await runProcess(process.execPath, [TSC, '-p', `tsconfig.${name}.json`], { cwd: app, env: userEnv(), timeoutMs: 240_000 });
      expect({ name, code: result.code, output: result.stdout + result.stderr }).toEqual({ name, code: 0, output: '' });
    }
  });

  it('require() from a CommonJS project gives the same module as import()', async () => {
    ws.write('app/cjs/package.json', JSON.stringify({ name: 'cjs-consumer', private: true, type: 'commonjs' }));
    ws.write(
      'app/cjs/index.js',
      `const pushtask = require('pushtask');
import('pushtask').then((imported) => {
  console.log(JSON.stringify({ TaskMaster: typeof pushtask.TaskMaster, defineConfig: typeof pushtask.defineConfig, same: imported.TaskMaster === pushtask.TaskMaster }));
});
`,
    );
    const result = await runProcess(process.execPath, ['index.js'], { cwd: ws.path('app/cjs'), env: userEnv() });
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual({ TaskMaster: 'function', defineConfig: 'function', same: true });
  });

  it('where Node cannot require() an ES module, the error says what to do', async () => {
    // The flag turns off require(esm) as in Node releases before 20.19 and 22.12.
    const result = await runProcess(process.execPath, ['--no-experimental-require-module', 'index.js'], { cwd: ws.path('app/cjs'), env: userEnv() });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/pushtask is an ES module and this Node\.js \(v[\d.]+\) cannot require\(\) it \(ERR_REQUIRE_ESM\)/);
    expect(result.stderr).toContain("await import('pushtask')");
  });

  it('npx pushtask --version prints the version', async () => {
    const result = await npx(['--version']).done;
    expect(result).toMatchObject({ code: 0, stdout: `${OWN.version}\n` });
  });

  it('npx pushtask demo delivers over its embedded SFTP server and exits on x', async () => {
    const demo = npx(['demo']);
    await demo.waitForOutput(/h +this help/); // the end of the command list; no prompt without a terminal
    demo.child.stdin!.write('a\n');
    await demo.waitForOutput(/uploaded +logs\/test1\.csv → test1\.csv/);
    demo.child.stdin!.end('x\n');
    const result = await demo.done;
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/\nstopped\n$/);
    expect(fs.readFileSync(ws.path('app/demo-run/remote/test1.csv'))).toEqual(fs.readFileSync(ws.path('app/demo-run/logs/test1.csv')));
  });

  it('pushtask watch, with a TypeScript config importing from pushtask, delivers a dropped file and stops on SIGTERM', async () => {
    ws.write(
      'app/pushtask.config.ts',
      `import { defineConfig } from 'pushtask';

export default defineConfig({
  watch: [{ dir: 'drop', stableMs: 100 }],
  transport: { type: 'local', dir: 'remote' },
  intervalMs: 200,
  log: { console: false },
});
`,
    );
    fs.mkdirSync(ws.path('app/drop'));
    // The installed bin itself, as a service runs it: npx would not pass SIGTERM on (npm exec
    // exits and leaves its child running).
    const watch = startProcess(ws.path('app/node_modules/.bin/pushtask'), ['watch', '--config', 'pushtask.config.ts'], { cwd: app, env: userEnv(), timeoutMs: 90_000 });
    running.push(watch);
    await watch.waitForOutput('Ctrl-C stops');
    ws.write('app/drop/a.txt', 'dropped\n');
    await waitFor(() => fs.existsSync(ws.path('app/remote/a.txt')), 'the dropped file to be delivered', 20_000);
    watch.child.kill('SIGTERM');
    const result = await watch.done;
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/SIGTERM: stopping gracefully[^]*\nstopped\n$/);
    expect(fs.readFileSync(ws.path('app/remote/a.txt'), 'utf8')).toBe('dropped\n');
  });
});
