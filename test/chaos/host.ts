/**
 * The host application of the chaos suite: a separate process (so it can be kill -9ed) that embeds
 * a TaskMaster and notifies on request over IPC, while it measures its own event loop.
 *
 * Messages in:  { type: 'notify', file } | { type: 'flush' } | { type: 'stop' }
 * Messages out: { type: 'ready', subtaskPid } | { type: 'subtask', pid } | { type: 'loop', delay: LoopDelay }
 *               | { type: 'start-failed', message }
 * The config comes from the JSON file named by PUSHTASK_CHAOS_CONFIG (never argv: it holds secrets).
 */
import fs from 'node:fs';
import { TaskMaster } from '../../src/index.js';
import type { PushtaskConfig } from '../../src/index.js';
import { sampleLoopDelay } from './loopDelay.js';

const send = (message: unknown) => process.send?.(message);
const configFile = process.env.PUSHTASK_CHAOS_CONFIG;
if (!configFile) throw new Error('PUSHTASK_CHAOS_CONFIG is not set');
const { config, cwd } = JSON.parse(fs.readFileSync(configFile, 'utf8')) as { config: PushtaskConfig; cwd: string };

const master = new TaskMaster(config, { cwd });
master.on('error', () => undefined);
master.on('subtask-start', (event) => send({ type: 'subtask', pid: event.pid }));

// A killed host's subtask may still hold the spool lock while it stops: try again, as a service
// manager restarting the host would.
const deadline = Date.now() + 30_000;
for (;;) {
  try {
    await master.start();
    break;
  } catch (error) {
    if (Date.now() > deadline) {
      send({ type: 'start-failed', message: (error as Error).message });
      process.exit(1);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

// From the moment start() resolved; cumulative per host process (a kill -9 loses at most the
// last 250 ms of samples). The harness pools the samples of all host processes of a run.
sampleLoopDelay((delay) => send({ type: 'loop', delay }));

process.on('message', (message: { type: string; file?: string }) => {
  if (message.type === 'notify' && message.file) {
    try {
      master.notify(message.file);
    } catch (error) {
      console.error(`notify failed: ${(error as Error).message}`);
    }
  } else if (message.type === 'flush') {
    master.checkPendingNotifications();
  } else if (message.type === 'stop') {
    void master.stop({ forceKill: false }).then(() => process.exit(0));
  }
});
process.on('disconnect', () => void master.stop().then(() => process.exit(0)));
send({ type: 'ready', subtaskPid: master.subtaskPid });
