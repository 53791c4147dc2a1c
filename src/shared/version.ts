/** The package version, read from package.json next to src/ or dist/ (both sit one level down). */
import fs from 'node:fs';

export function packageVersion(): string {
  const file = new URL('../../package.json', import.meta.url);
  const { version } = JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: string };
  return version ?? 'unknown';
}
