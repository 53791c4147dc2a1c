import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configReferenceMarkdown, withConfigReference } from '../../src/config/reference.js';

describe('README configuration reference', () => {
  it('is exactly what the schema generates (run `npm run docs:config` after changing the schema)', () => {
    const readme = fs.readFileSync('README.md', 'utf8');
    expect(withConfigReference(readme)).toBe(readme);
  });

  it('lists every top-level field with its default', () => {
    const reference = configReferenceMarkdown();
    for (const row of ['`intervalMs` | integer | `2000`', '`deadTimeMs` | integer | `180000`', '`watch[].burstMode.expireMs` | integer | `5000`', '`retry.quickTries` | integer | `5`']) {
      expect(reference).toContain(row);
    }
  });
});
