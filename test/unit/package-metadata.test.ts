/**
 * The Node versions pushtask promises (package.json `engines`, README "Installing") are the ones CI
 * tests (.ci/run's NODE_LINES): metadata that says what CI never runs is a defect.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';

const read = (file: string) => fs.readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');
const pkg = JSON.parse(read('package.json')) as { engines: { node: string } };
const ci = read('.ci/run');
const readme = read('README.md');
const lines = (/^NODE_LINES=\(([\d ]+)\)$/m.exec(ci)?.[1] ?? '').split(' ').filter(Boolean).map(Number);

describe('supported Node versions', () => {
  it('README states the engines range', () => {
    expect(pkg.engines.node).toBe('^20.19.0 || >=22.12.0');
    expect(readme).toContain('**Node.js ^20.19.0 or >= 22.12.0** (`engines`)');
  });

  it('CI tests every line README names, and the chaos suite on the newest', () => {
    expect(lines).toEqual([22, 24, 26]);
    expect(readme).toContain(`Tested by CI on every change: Node ${lines.slice(0, -1).join(', ')} and ${lines.at(-1)}`);
    expect(ci).toMatch(new RegExp(`^CHAOS_LINE=${Math.max(...lines)}$`, 'm'));
  });
});
