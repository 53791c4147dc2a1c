/**
 * Entry point of the subtask process. The configuration, secrets included, arrives over the IPC
 * channel — never on argv or in the environment. The subtask never waits on the master: events
 * are sent best-effort, and if the master disappears the subtask stops on its own.
 */
import type { ResolvedConfig } from '../config/resolve.js';
import { errorMessage, toErrorInfo } from '../shared/errors.js';
import type { MasterToSubtask, SubtaskToMaster } from '../shared/ipc.js';
import { closeLogFiles, reopenLogFiles } from '../shared/logFiles.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { collectSecrets, scrubSecrets } from '../shared/secrets.js';
import { Agent } from './agent.js';

function send(message: SubtaskToMaster): void {
  if (!process.connected || !process.send) return;
  try {
    process.send(message, undefined, {}, () => undefined);
  } catch {
    // The master is gone; the disconnect handler stops us.
  }
}

let agent: Agent | null = null;
let logger: Logger | null = null;
let stopping: Promise<void> | null = null;

function stop(graceful: boolean, exitCode = 0): Promise<void> {
  stopping ??= (async () => {
    try {
      await agent?.stop({ graceful });
    } catch (error) {
      logger?.error({ err: error }, `Error while stopping: ${errorMessage(error)}`);
      exitCode = 1;
    }
    logger?.flush();
    await closeLogFiles(); // the log file's last lines are written before the process ends
    process.exit(exitCode);
  })();
  return stopping;
}

async function init(config: ResolvedConfig): Promise<void> {
  logger = createLogger({
    name: 'subtask',
    level: config.log.level,
    file: config.log.subtaskFile,
    rotation: config.log.rotation,
    console: config.log.console,
    secrets: collectSecrets(config),
  });
  try {
    agent = await Agent.create(config, logger, (name, payload) => send({ type: 'event', name, payload } as SubtaskToMaster));
    await agent.start();
    send({ type: 'ready', pid: process.pid });
  } catch (error) {
    const info = toErrorInfo(error);
    info.message = scrubSecrets(info.message, collectSecrets(config));
    logger.fatal(`Subtask could not start: ${info.message}`);
    send({ type: 'fatal', error: info });
    await stop(false, 1);
  }
}

process.on('message', (message: MasterToSubtask) => {
  switch (message.type) {
    case 'init':
      void init(message.config);
      break;
    case 'stop':
      void stop(true);
      break;
    case 'log-level':
      agent?.setLogLevel(message.level);
      break;
  }
});

// The master died (a graceful stop says so first, over IPC): leave at once, no orphans. A host
// restarted right away may take over the spool as soon as we are gone; the spool keeps whatever
// was not confirmed for it.
process.on('disconnect', () => void stop(false));
process.on('SIGTERM', () => void stop(true));
process.on('SIGINT', () => {
  // Ctrl-C in a terminal reaches the whole process group; the master decides how we stop.
});
process.on('SIGHUP', () => {
  // A closed terminal hangs up the whole group; `pushtask watch` reloads on SIGHUP: the master decides.
});
process.on('SIGUSR1', () => {
  // logrotate moved the log file away (`postrotate`): write to a new one under the same name.
  reopenLogFiles();
  logger?.info('Log files reopened (SIGUSR1)');
});
process.on('uncaughtException', (error) => {
  logger?.fatal({ err: error }, `Subtask crashed: ${errorMessage(error)}`);
  send({ type: 'fatal', error: toErrorInfo(error) });
  logger?.flush();
  // The line that explains the crash must reach the file (bounded: then exit anyway).
  void closeLogFiles(1000).finally(() => process.exit(70));
});
