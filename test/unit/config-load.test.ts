/** Config files that do not load say exactly why (issue 13): real files, loaded as the CLI does. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../src/config/load.js';

let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-config-load-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, source: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, source);
  return file;
}

async function loadError(file: string): Promise<string> {
  try {
    await loadConfigFile(file);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error(`expected ${file} to fail`);
}

describe('loadConfigFile', () => {
  it("resolves `import { defineConfig } from 'pushtask'` wherever the file is (no pushtask installed beside it)", async () => {
    const file = write('ok.config.ts', "import { defineConfig } from 'pushtask';\nexport default defineConfig({ watch: [{ dir: 'drop' }] });\n");
    const loaded = await loadConfigFile(file);
    expect(loaded.resolved.watch[0]!.path).toBe(path.join(dir, 'drop'));
  });

  it('a file without a default export', async () => {
    const file = write('named.config.ts', "export const config = { watch: [{ dir: 'drop' }] };\n");
    expect(await loadError(file)).toBe(`Config file ${file} has no default export (it exports \`config\` but no default); write \`export default defineConfig({ ... })\``);
  });

  it('a syntax error, with file:line:column', async () => {
    const file = write('syntax.config.ts', "export default {\n  watch: [{ dir: 'drop' }]\n  transport: { type: 'local', dir: 'out' },\n};\n");
    expect(await loadError(file)).toMatch(new RegExp(`^Syntax error in ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:2: Unexpected token, expected ","$`));
  });

  it('defineConfig used without its import', async () => {
    const file = write('noimport.config.ts', "export default defineConfig({ watch: [{ dir: 'drop' }] });\n");
    expect(await loadError(file)).toBe(`Config file ${file} calls defineConfig without importing it: add \`import { defineConfig } from 'pushtask';\` at the top`);
  });

  it('an import that cannot be found, by name', async () => {
    const file = write('missing-import.config.ts', "import site from 'no-such-package-pushtask';\nexport default { watch: [{ dir: site }] };\n");
    expect(await loadError(file)).toBe(`Config file ${file} imports 'no-such-package-pushtask', which cannot be found from ${dir}; install it there or remove the import`);
  });

  it('a file that does not exist, and one that throws while it runs', async () => {
    expect(await loadError(path.join(dir, 'nope.ts'))).toBe(`Config file ${path.join(dir, 'nope.ts')} does not exist; check the path`);
    const file = write('throws.config.ts', "const site = undefined as unknown as { name: string };\nexport default { watch: [{ dir: site.name }] };\n");
    expect(await loadError(file)).toMatch(/^Config file .*throws\.config\.ts failed while it was loaded: Cannot read properties of undefined \(reading 'name'\) \(--debug shows where\)$/);
  });
});
