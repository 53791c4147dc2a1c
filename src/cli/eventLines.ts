/**
 * One short line per TaskMaster event, as it happens: what the demo shows so a user can watch
 * notifies, burst decisions, uploads, failures and the subtask's life.
 */
import type { TaskMaster } from '../master/TaskMaster.js';
import type { NotifyEvent, TaskMasterEvents } from '../master/events.js';
import { errorMessage } from '../shared/errors.js';
import { clockTime, duration, formatBytes, shortPath } from './format.js';

const REASONS: Record<NotifyEvent['reason'], string> = {
  direct: 'no burst check',
  first: 'first notify',
  regular: 'no burst',
  counting: 'quick notify, counting towards a burst',
  'burst-start': 'burst started',
  bursting: 'burst goes on',
  'burst-expired': 'burst expired',
  'burst-ended': 'burst ended',
  flush: 'held data flushed',
};

export function describeNotify(event: NotifyEvent, base?: string): string {
  const what = `notify    [${event.index}] ${shortPath(event.file, base)}`;
  if (event.passed) return `${what}: passed on (${REASONS[event.reason]})`;
  const due = event.pendingDueAt === null ? '' : `; flushed at ${clockTime(event.pendingDueAt)} unless a notify comes first`;
  return `${what}: held (${REASONS[event.reason]})${due}`;
}

/** Subscribes to every event of `master`; returns the unsubscribe function. */
export function printEvents(master: TaskMaster, print: (line: string) => void, base?: string): () => void {
  const line = (text: string) => print(`${clockTime(Date.now())} ${text}`);
  const short = (file: string) => shortPath(file, base);
  const handlers = {
    notify: (e) => line(describeNotify(e, base)),
    uploaded: (e) => line(`uploaded  ${short(e.file)} → ${e.remotePath} (${formatBytes(e.bytes)} in ${e.ms} ms)`),
    'upload-failed': (e) =>
      line(`FAILED    ${short(e.file)}: ${e.error.message} [${e.error.code}]${e.willRetry ? '; will retry' : ''}`),
    connected: (e) => line(`connected    ${e.target}`),
    disconnected: (e) => line(`disconnected (${e.reason === 'dead-time' ? 'dead time: no notifies for a while' : e.reason})${e.detail ? `: ${e.detail}` : ''}`),
    heartbeat: (e) => line(`heartbeat ${short(e.file)} (next one due within ${e.nextDueSec} s)`),
    'subtask-exit': (e) =>
      line(
        `subtask exited (code ${e.code}, signal ${e.signal})` +
          (e.restarting ? `; restarting it in ${duration(e.restartInMs ?? 0)}` : ''),
      ),
    'subtask-start': (e) => {
      if (e.restart) line(`subtask restarted (pid ${e.pid})`);
    },
    error: (e) => line(`error     ${errorMessage(e)}`),
    progress: () => undefined, // the demo's transfers are small; `pushtask watch` shows progress
    health: () => undefined, // for metrics and the status file, not a line
  } satisfies { [K in keyof TaskMasterEvents]: (...args: TaskMasterEvents[K]) => void };
  // `satisfies` above checks each handler against its event; the loop cannot keep that pairing.
  for (const [name, handler] of Object.entries(handlers)) master.on(name as never, handler as never);
  return () => {
    for (const [name, handler] of Object.entries(handlers)) master.off(name as never, handler as never);
  };
}
