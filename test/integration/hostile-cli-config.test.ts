/**
 * `pushtask watch --config FILE` with bad config files, as a user runs it (a real process through
 * tsx): it exits non-zero at once, names the field, and never prints a secret from the file, not
 * even when the file does not parse.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { recordCount } from '../helpers/hostileCounts.js';
import { createWorkspace, type Workspace } from '../helpers/workspace.js';

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const SECRET = 'cli-config-SECRET-4e1f0a';

let ws: Workspace;

afterEach(() => ws?.cleanup());

function runWatch(configFile: string): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', TSX, CLI, 'watch', '--config', configFile], { cwd: ws.dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

const transport = `{ type: 'sftp', host: '127.0.0.1', username: 'u', password: '${SECRET}', hostKey: 'accept-new' }`;

describe('pushtask watch with a bad config file', () => {
  const cases: { name: string; source: string; expected: RegExp }[] = [
    {
      name: 'a wrong-typed field',
      source: `export default { watch: [{ dir: 'drop' }], intervalMs: 'fast', transport: ${transport} };\n`,
      expected: /intervalMs: .*expected number/,
    },
    {
      name: 'a wrong-typed secret field',
      source: `export default { watch: [{ dir: 'drop' }], transport: { type: 'ftp', host: 'h', username: 'u', password: ['${SECRET}'] } };\n`,
      expected: /transport\.password: .*expected string/,
    },
    {
      name: 'a typo next to a secret',
      source: `export default { watch: [{ dir: 'drop' }], transport: { ...${transport}, pasword: '${SECRET}' } };\n`,
      expected: /transport: unknown field\(s\) "pasword"/,
    },
    {
      name: 'a file that does not parse, the secret on the broken line',
      source: `export default {\n  watch: [{ dir: 'drop' }],\n  transport: { type: 'sftp', host: 'h', username: 'u', password: '${SECRET}' ]],\n};\n`,
      expected: /Syntax error in .*bad\.config\.ts:3:\d+: /,
    },
  ];

  it.each(cases)('$name: exits 1 naming the problem, without the secret', async ({ source, expected }) => {
    ws = createWorkspace();
    fs.writeFileSync(ws.path('bad.config.ts'), source);
    const { code, output } = await runWatch('bad.config.ts');
    expect(code, output).toBe(1);
    expect(output).toMatch(expected);
    expect(output).not.toContain(SECRET);
    // Nothing was started: no spool, no logs.
    expect(fs.readdirSync(ws.dir)).toEqual(['bad.config.ts']);
  });

  it('records the count', async () => {
    await recordCount('config.cliBadFiles', cases.length);
  });
});
