import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { withGeneratedSections } from '../../src/config/docs.js';
import { configReferenceMarkdown } from '../../src/config/reference.js';

describe('README generated sections', () => {
  it('match the schema and demo/logger.ts exactly (run `npm run docs` after changing either)', () => {
    const readme = fs.readFileSync('README.md', 'utf8');
    expect(withGeneratedSections(readme, fs.readFileSync('demo/logger.ts', 'utf8'))).toBe(readme);
  });

  it('list every field with its default', () => {
    const reference = configReferenceMarkdown();
    for (const row of [
      '`intervalMs` | integer | `2000`',
      '`deadTimeMs` | integer | `180000`',
      '`watch[].burstMode.expireMs` | integer | `5000`',
      '`retry.quickTries` | integer | `5`',
      '`transport.hostKey` (sftp) | string',
      '`transport.secure` (ftp) | boolean \\| \'implicit\' | `true`',
    ]) {
      expect(reference).toContain(row);
    }
  });
});
