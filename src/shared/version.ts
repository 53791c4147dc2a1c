/** The package version, read from package.json next to src/ or dist/ (both sit one level down). */
import fs from 'node:fs';

/**
 * 'unknown' when package.json is not where it should be (a copied build, as the benches load):
 * the version only labels the health status, and must never stop the agent.
 */
export function packageVersion(): string {
  try {
    const file = new URL('../../package.json', import.meta.url);
    const { version } = JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: string };
    return version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
