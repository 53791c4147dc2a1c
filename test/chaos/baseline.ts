/** A bare Node process measuring its own event loop next to the chaos host: what "no stall" can mean on this machine now. */
import { sampleLoopDelay } from './loopDelay.js';

sampleLoopDelay((delay) => process.send?.(delay));
process.on('disconnect', () => process.exit(0));
