/** Rewrites README.md's configuration reference from the schema. */
import fs from 'node:fs';
import { withConfigReference } from '../src/config/reference.js';

const readme = fs.readFileSync('README.md', 'utf8');
fs.writeFileSync('README.md', withConfigReference(readme));
console.log('README.md configuration reference updated');
