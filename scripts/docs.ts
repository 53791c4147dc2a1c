/** Rewrites README.md's generated sections (configuration reference, embedding example). */
import fs from 'node:fs';
import { withGeneratedSections } from '../src/config/docs.js';

const readme = fs.readFileSync('README.md', 'utf8');
fs.writeFileSync('README.md', withGeneratedSections(readme, fs.readFileSync('demo/logger.ts', 'utf8')));
console.log('README.md: configuration reference and embedding example updated');
