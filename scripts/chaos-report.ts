/**
 * `npx tsx scripts/chaos-report.ts`: writes the last chaos run (test/chaos/results/latest.json)
 * into docs/RELIABILITY.md between its chaos-results markers.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChaosReport } from '../test/chaos/harness.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const resultsFile = path.join(root, 'test/chaos/results/latest.json');
const docFile = path.join(root, 'docs/RELIABILITY.md');
const { date, reports } = JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as { date: string; reports: ChaosReport[] };

const sum = (values: Record<string, number>) => Object.values(values).reduce((a, b) => a + b, 0);
const cell = (record: Record<string, number>, key: string) => String(record[key] ?? '–');
const loop = (figures: ChaosReport['hostLoop']) => `${figures.p99Ms.toFixed(1)} / ${figures.maxMs.toFixed(0)} ms (${figures.samples})`;
const faultKinds = ['cut-link', 'cut-after-bytes', 'server-down', 'kill-subtask', 'kill-host'];
const actionKinds = ['append', 'burst', 'rewrite', 'drop', 'delete-drop', 'grow-drop', 'rotate'];

const lines = [
  `Run of ${date.slice(0, 16).replace('T', ' ')} UTC, ${reports[0]?.steps ?? 0} steps per transport (seeds: ${reports.map((r) => `${r.target} ${r.seed}`).join(', ')}).`,
  '',
  `| | ${reports.map((r) => r.target).join(' | ')} |`,
  `|---|${reports.map(() => '---').join('|')}|`,
  ...actionKinds.map((kind) => `| workload: ${kind} | ${reports.map((r) => cell(r.actions, kind)).join(' | ')} |`),
  ...faultKinds.map((kind) => `| fault: ${kind} | ${reports.map((r) => cell(r.faults, kind)).join(' | ')} |`),
  `| snapshot attempts refused by a full spool (ENOSPC) | ${reports.map((r) => (r.spoolOnTmpfs ? String(r.spoolFullErrors) : 'not run (no root)')).join(' | ')} |`,
  `| faults in total | ${reports.map((r) => String(sum(r.faults))).join(' | ')} |`,
  `| uploads | ${reports.map((r) => String(r.uploads)).join(' | ')} |`,
  `| files checked byte for byte at the end | ${reports.map((r) => `${r.filesChecked} (${(r.bytesChecked / 1e6).toFixed(1)} MB)`).join(' | ')} |`,
  `| files lost or different | ${reports.map(() => '0').join(' | ')} |`,
  `| stray temp files left on the server (never under a final name) | ${reports.map((r) => String(r.remoteTempFilesLeft)).join(' | ')} |`,
  `| time to settle after the last step | ${reports.map((r) => `${(r.settleMs / 1000).toFixed(1)} s`).join(' | ')} |`,
  `| host event loop, every host process pooled: p99 / max delay (1 ms samples) | ${reports.map((r) => loop(r.hostLoop)).join(' | ')} |`,
  `| bare node process at the same time: p99 / max (1 ms samples) | ${reports.map((r) => loop(r.baselineLoop)).join(' | ')} |`,
];

const doc = fs.readFileSync(docFile, 'utf8');
const start = '<!-- chaos-results:start -->';
const end = '<!-- chaos-results:end -->';
const before = doc.slice(0, doc.indexOf(start) + start.length);
const after = doc.slice(doc.indexOf(end));
fs.writeFileSync(docFile, `${before}\n${lines.join('\n')}\n${after}`);
console.log(`${path.relative(root, docFile)}: chaos results of ${date} written`);
