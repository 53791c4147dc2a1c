/**
 * The demo's commands, pysubtask's plus `s` and `h`: each takes one input line and reports what it
 * did. Kept apart from readline so the REPL loop stays a loop.
 */
import fs from 'node:fs';
import type { ResolvedWatchFile } from '../config/resolve.js';
import type { TaskMaster } from '../master/TaskMaster.js';
import { errorMessage } from '../shared/errors.js';
import { clockTime, shortPath } from './format.js';
import { formatStatus, readStatus } from './statusFormat.js';

export interface DemoSessionOptions {
  master: TaskMaster;
  /** Shown paths are relative to this folder. */
  base: string;
  /** Append a line of data before each notify (the zero-setup demo's own files only). */
  appendData: boolean;
  print: (line: string) => void;
}

export class DemoSession {
  readonly #o: DemoSessionOptions;
  readonly #files: ResolvedWatchFile[];
  #counter = 0;

  constructor(options: DemoSessionOptions) {
    this.#o = options;
    this.#files = options.master.config.watch.filter((entry): entry is ResolvedWatchFile => entry.kind === 'file');
  }

  help(): string {
    const { master, base } = this.#o;
    const entries = master.config.watch.map((entry) => {
      const name = shortPath(entry.path, base);
      if (entry.kind === 'dir') return `  ${entry.index}    drop folder ${name}/ — copy a file into it; touch its .notify to send it again`;
      return `  ${entry.index}    notify ${name}${entry.burst ? ' (burst mode)' : ''}`;
    });
    const data = this.#o.appendData ? ' (each notify first appends a line to the file)' : '';
    return [
      'Commands:',
      '  x    exit (graceful stop: held data is flushed and uploads finish first)',
      `  a    notify all files${data}`,
      ...entries,
      '  c    check for data held back by burst mode and notify it if due',
      '  r    reset: stop and restart the subtask',
      '  s    status',
      '  h    this help',
    ].join('\n');
  }

  /** Runs one command line; resolves false when the demo should end. */
  async run(input: string): Promise<boolean> {
    const cmd = input.trim();
    try {
      if (cmd === '') return true;
      if (cmd === 'x') return false;
      if (cmd === 'a') this.#notifyAll();
      else if (/^\d+$/.test(cmd)) this.#notifyIndex(Number(cmd));
      else if (cmd === 'c') this.#checkPending();
      else if (cmd === 'r') await this.#reset();
      else if (cmd === 's') this.#status();
      else if (cmd === 'h' || cmd === '?') this.#o.print(this.help());
      else this.#o.print(`unknown command ${JSON.stringify(cmd)}; h shows the commands`);
    } catch (error) {
      this.#o.print(`error: ${errorMessage(error)}`);
    }
    return true;
  }

  #append(file: string): void {
    if (!this.#o.appendData) return;
    this.#counter += 1;
    fs.appendFileSync(file, `${new Date().toISOString()},${this.#counter}\n`);
  }

  #notifyAll(): void {
    for (const entry of this.#files) this.#append(entry.path);
    this.#o.master.notifyAll();
  }

  #notifyIndex(index: number): void {
    const entry = this.#o.master.config.watch[index];
    if (entry?.kind === 'dir') {
      this.#o.print(`${index} is the drop folder ${shortPath(entry.path, this.#o.base)}/: copy a file into it to upload it`);
      return;
    }
    if (entry) this.#append(entry.path);
    this.#o.master.notifyIndex(index); // throws a clear error for an unknown index
  }

  #checkPending(): void {
    const flushed = this.#o.master.checkPendingNotifications();
    if (flushed > 0) return; // the notify event lines show what was flushed
    const held = this.#o.master.heldBack.map(({ file, dueAt }) => `${shortPath(file, this.#o.base)} until ${clockTime(dueAt)}`);
    this.#o.print(held.length ? `check pending: nothing due yet; held: ${held.join(', ')}` : 'check pending: nothing held');
  }

  async #reset(): Promise<void> {
    this.#o.print('reset: stopping and restarting the subtask');
    await this.#o.master.reset();
    this.#o.print(`reset: subtask running again (pid ${this.#o.master.subtaskPid})`);
  }

  #status(): void {
    const read = readStatus(this.#o.master.config.spoolDir);
    // status.json is written a moment after each change, so right after start it may not exist yet.
    const text = read.kind === 'missing' ? `status: ${read.file} is not written yet; try again in a moment` : formatStatus(read.status, { base: this.#o.base });
    this.#o.print(text.trimEnd());
  }

  /** Graceful exit: the master passes on held data and the subtask delivers its queue first. */
  async exit(): Promise<void> {
    const { master, print } = this.#o;
    print('exit: stopping gracefully (data held by burst mode is passed on, queued uploads finish first)');
    await master.stop({ forceKill: false });
    print('stopped');
  }
}
