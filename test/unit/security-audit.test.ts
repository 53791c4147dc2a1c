/**
 * scripts/audit.sh, the CI dependency audit: fails on high or critical advisories in runtime
 * dependencies, passes on low/moderate ones, and says "audit skipped: <reason>" (passing) when the
 * registry's audit endpoint cannot be reached, as on this project's machines (HTTP 405).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createWorkspace, type Workspace } from '../helpers/workspace.js';

const SCRIPT = fileURLToPath(new URL('../../scripts/audit.sh', import.meta.url));

let ws: Workspace;
afterEach(() => ws?.cleanup());

function audit(report: unknown): { code: number | null; output: string } {
  ws = createWorkspace();
  const file = ws.write('report.json', typeof report === 'string' ? report : JSON.stringify(report));
  const run = spawnSync('bash', [SCRIPT], { env: { ...process.env, AUDIT_JSON_FILE: file }, encoding: 'utf8' });
  return { code: run.status, output: run.stdout + run.stderr };
}

const counts = (c: Partial<Record<'low' | 'moderate' | 'high' | 'critical', number>>) => ({
  metadata: { vulnerabilities: { info: 0, low: 0, moderate: 0, high: 0, critical: 0, ...c, total: Object.values(c).reduce((a, b) => a + b, 0) } },
});

describe('scripts/audit.sh', () => {
  it('fails on a critical or high advisory, naming the package and the advisory', () => {
    const report = {
      auditReportVersion: 2,
      vulnerabilities: {
        'basic-ftp': {
          name: 'basic-ftp',
          severity: 'critical',
          range: '<5.0.4',
          fixAvailable: true,
          via: [{ source: 1, name: 'basic-ftp', title: 'Path traversal in downloadToDir', severity: 'critical', range: '<5.0.4' }],
        },
        ws: { name: 'ws', severity: 'high', range: '<8.17.1', fixAvailable: true, via: [{ title: 'DoS with many HTTP headers' }] },
        debug: { name: 'debug', severity: 'low', range: '*', via: ['ms'] },
      },
      ...counts({ critical: 1, high: 1, low: 1 }),
    };
    const { code, output } = audit(report);
    expect(code).toBe(1);
    expect(output).toMatch(/audit FAILED: 1 critical and 1 high/);
    expect(output).toMatch(/basic-ftp \(critical, <5\.0\.4\): Path traversal in downloadToDir \[fix available\]/);
    expect(output).toMatch(/ws \(high/);
    expect(output).not.toMatch(/debug/);
  });

  it('passes with only low and moderate advisories, saying how many', () => {
    const { code, output } = audit({ auditReportVersion: 2, vulnerabilities: {}, ...counts({ low: 2, moderate: 1 }) });
    expect(code).toBe(0);
    expect(output).toMatch(/audit passed: no high or critical advisories in runtime dependencies \(3 low\/moderate/);
  });

  it('skips (and passes) when the endpoint is unreachable: a 405, a network error, no output', () => {
    const unreachable = [
      { message: '405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk', statusCode: 405, error: { summary: '', detail: '' } },
      { error: { code: 'ENOTFOUND', summary: 'request to https://registry.npmjs.org failed, reason: getaddrinfo ENOTFOUND', detail: '' } },
      '',
    ];
    for (const report of unreachable) {
      const { code, output } = audit(report);
      expect(code, output).toBe(0);
      expect(output).toMatch(/^audit skipped: \S/);
    }
    expect(audit(unreachable[0]).output).toContain('405 Method Not Allowed');
  });

  it('is run by .ci/run after the README commands `npm install` and `npm test` (and the chaos suite)', () => {
    const ci = fs.readFileSync(new URL('../../.ci/run', import.meta.url), 'utf8');
    // The top-level steps (the Node-line loop in between is indented); a failed audit fails the run.
    const steps = ci.split('\n').filter((line) => /^(npm install$|run_suite |with_node .*run_suite |bash scripts\/audit\.sh)/.test(line));
    expect(steps).toEqual([
      'npm install',
      'run_suite "npm test" npm test',
      'with_node "$CHAOS_LINE" run_suite "chaos suite" npm run test:chaos',
      'bash scripts/audit.sh || failed=1',
    ]);
    expect(ci).toMatch(/\nexit "\$failed"\n$/);
  });
});
