import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createWorkspace, sameBytes, testConfig, waitFor, type Workspace } from '../helpers/workspace.js';

// `npm test` builds dist/ before running vitest; a bare `vitest run` may not have it.
const distEntry = path.resolve('dist/index.js');
const hasDist = fs.existsSync(distEntry);
if (!hasDist) console.warn(`Skipping the built-package test: ${distEntry} is missing (run \`npm run build\`).`);

let ws: Workspace | null = null;
afterEach(() => ws?.cleanup());

describe.skipIf(!hasDist)('the built package (dist/)', () => {
  it('exports TaskMaster whose compiled subtask delivers a file', async () => {
    const { TaskMaster } = (await import(pathToFileURL(distEntry).href)) as typeof import('../../src/index.js');
    ws = createWorkspace();
    ws.write('data/a.csv', 'built\n');
    const master = new TaskMaster(testConfig({ watch: [{ file: 'data/a.csv' }] }), { cwd: ws.dir });
    try {
      await master.start();
      master.notify('data/a.csv');
      await waitFor(() => sameBytes(ws!.path('data/a.csv'), ws!.path('remote/a.csv')), 'delivery through dist/');
    } finally {
      await master.stop();
    }
    expect(fs.existsSync(path.resolve('dist/index.d.ts'))).toBe(true);
  });

  it("finds the fleet page's files from dist/ as from src/, and the package ships them", async () => {
    const { WEB_DIR } = (await import(pathToFileURL(path.resolve('dist/monitor/server.js')).href)) as typeof import('../../src/monitor/server.js');
    for (const file of ['index.html', 'app.js', 'style.css']) expect(fs.existsSync(new URL(file, WEB_DIR))).toBe(true);
    const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8')) as { files: string[] };
    expect(pkg.files).toContain('web');
  });
});
