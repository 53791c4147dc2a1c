#!/usr/bin/env node
/** The `pushtask` command line; each command lives in its own module under cli/. */
import { processIO } from './cli/command.js';
import { main } from './cli/main.js';

// exitCode, not exit(): output still buffered for a pipe is written before the process ends.
process.exitCode = await main(process.argv.slice(2), processIO());
