/**
 * Watched paths are checked before anything starts: a mistyped drop folder used to be created
 * and watched in silence, and a data file's missing folder only showed as "does not exist" on
 * every notify. A missing folder is a configuration error unless the entry says `create: true`.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ResolvedConfig } from '../config/resolve.js';

export interface WatchedPathsReport {
  /** Configuration errors, each naming its field: start() refuses to run. */
  problems: string[];
  /** Folders that `create: true` creates (or, in a dry run, would create). */
  toCreate: string[];
  /** Worth a line at every start, not an error (a data file its logger has not written yet). */
  warnings: string[];
}

function kindOf(p: string): 'missing' | 'dir' | 'other' {
  try {
    return fs.statSync(p).isDirectory() ? 'dir' : 'other';
  } catch {
    return 'missing';
  }
}

/** Looks only; writes nothing (`--dry-run` uses it as it is). */
export function checkWatchedPaths(config: ResolvedConfig): WatchedPathsReport {
  const report: WatchedPathsReport = { problems: [], toCreate: [], warnings: [] };
  for (const entry of config.watch) {
    const field = `watch.${entry.index}.${entry.kind}`;
    const folder = entry.kind === 'dir' ? entry.path : path.dirname(entry.path);
    const kind = kindOf(folder);
    if (kind === 'other') {
      report.problems.push(`${field}: ${folder} is not a folder`);
    } else if (kind === 'missing') {
      if (entry.create) report.toCreate.push(folder);
      else {
        const what = entry.kind === 'dir' ? 'the drop folder' : `the folder of ${path.basename(entry.path)}`;
        report.problems.push(`${field}: ${what} ${folder} does not exist (a typo?); create it, or set \`create: true\` on this entry to have pushtask create it`);
      }
    } else if (entry.kind === 'file' && !fs.existsSync(entry.path)) {
      report.warnings.push(`${entry.path} does not exist yet; it is uploaded once it exists and is notified`);
    }
  }
  return report;
}

/** Creates what `create: true` asks for; returns the report's problems and warnings. */
export function prepareWatchedPaths(config: ResolvedConfig): WatchedPathsReport {
  const report = checkWatchedPaths(config);
  if (report.problems.length === 0) for (const folder of report.toCreate) fs.mkdirSync(folder, { recursive: true });
  return report;
}
