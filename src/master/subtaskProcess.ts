/**
 * One subtask child process: forked with the configuration sent over IPC (never argv or env),
 * ready once it says so, and stopped in stages — IPC stop, SIGTERM, SIGKILL — so it always ends.
 * How long it may take to get ready is the supervisor's business (supervisor.ts).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ResolvedConfig } from '../config/resolve.js';
import { PushtaskError } from '../shared/errors.js';
import type { MasterToSubtask, SubtaskToMaster } from '../shared/ipc.js';
import type { ExitInfo, SupervisedChild } from './supervisor.js';

export type { ExitInfo };
export const TERM_GRACE_MS = 2000;

/**
 * A small young generation: the subtask is I/O-bound, and V8's default semi-spaces let its heap
 * grow to ~100 MB after a burst of uploads; this keeps it near the idle size at a little GC cost.
 */
const SUBTASK_V8_FLAGS = ['--max-semi-space-size=2'];

/** The compiled entry in dist/, or the TypeScript source run through tsx in development. */
function subtaskEntry(): { file: string; execArgv: string[] } {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const tsx = pathToFileURL(createRequire(here).resolve('tsx')).href;
    return { file: fileURLToPath(new URL('../subtask/main.ts', here)), execArgv: [...SUBTASK_V8_FLAGS, '--import', tsx] };
  }
  return { file: fileURLToPath(new URL('../subtask/main.js', here)), execArgv: SUBTASK_V8_FLAGS };
}

export class SubtaskProcess implements SupervisedChild {
  readonly child: ChildProcess;
  readonly exited: Promise<ExitInfo>;
  readonly ready: Promise<void>;

  constructor(config: ResolvedConfig, onMessage: (message: SubtaskToMaster) => void) {
    const entry = subtaskEntry();
    this.child = fork(entry.file, [], {
      execArgv: entry.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    this.ready = new Promise((resolve, reject) => {
      this.child.on('message', (message: SubtaskToMaster) => {
        if (message.type === 'ready') {
          resolve();
        } else if (message.type === 'fatal') {
          reject(new PushtaskError('SUBTASK_START_FAILED', `The subtask failed: ${message.error.message} [${message.error.code}]`));
        }
        onMessage(message);
      });
      void this.exited.then(({ code, signal }) => {
        reject(new PushtaskError('SUBTASK_START_FAILED', `The subtask exited before it was ready (code ${code}, signal ${signal})`));
      });
      this.child.once('error', (error) => {
        reject(new PushtaskError('SUBTASK_START_FAILED', `Could not start the subtask: ${error.message}`, { cause: error }));
      });
    });
    // The ready promise may be rejected after nobody waits for it any more (exit after ready).
    this.ready.catch(() => undefined);
    this.send({ type: 'init', config });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  send(message: MasterToSubtask): void {
    if (!this.child.connected) return;
    try {
      this.child.send(message, undefined, {}, () => undefined);
    } catch {
      // Channel closed under us: the exit handler deals with it.
    }
  }

  async kill(): Promise<ExitInfo> {
    if (this.running) this.child.kill('SIGKILL');
    return this.exited;
  }

  /** Asks the subtask to finish the upload in flight and exit; forces it after `timeoutMs`. */
  async stopGracefully(timeoutMs: number): Promise<ExitInfo> {
    if (!this.running) return this.exited;
    this.send({ type: 'stop' });
    if (await settlesWithin(this.exited, timeoutMs)) return this.exited;
    this.child.kill('SIGTERM');
    if (await settlesWithin(this.exited, TERM_GRACE_MS)) return this.exited;
    return this.kill();
  }
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
