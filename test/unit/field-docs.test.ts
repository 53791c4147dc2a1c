/** Documentation that had gone stale (issue 13) says what the code does. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { command as status } from '../../src/cli/status.js';
import { demoSpoolDir } from '../../src/cli/demoConfig.js';
import { loadConfigFile } from '../../src/config/load.js';

const README = fs.readFileSync(path.resolve(import.meta.dirname, '../../README.md'), 'utf8');

describe('stale documentation', () => {
  it("`status --help` names the demo's real default spool", () => {
    const spool = path.relative(process.cwd(), demoSpoolDir(process.cwd()));
    expect(spool).toMatch(/upload[\\/]sftp$/);
    expect(status.help).toContain(`reads the zero-setup demo's spool (./${spool})`);
  });

  it('`c` in the demo flushes only what is due', () => {
    expect(README).toMatch(/`c` check data held by burst mode and flush what is\s+due/);
    expect(README).not.toMatch(/`c` flush data held by burst mode/);
  });

  it("transport.dir is relative to the config file's folder, as loading it does", async () => {
    expect(README).toMatch(/\| `transport\.dir` \(local\) \|[^\n]*relative to the config file's folder/);
    const dir = fs.mkdtempSync(path.join(process.cwd(), '.field-docs-'));
    try {
      fs.writeFileSync(path.join(dir, 'c.ts'), "export default { watch: [{ dir: 'drop' }], transport: { type: 'local', dir: 'out' } };\n");
      const loaded = await loadConfigFile(path.join(dir, 'c.ts'));
      expect(loaded.resolved.transport).toMatchObject({ type: 'local', dir: path.join(dir, 'out') });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
