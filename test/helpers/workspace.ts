/** Real temp folders and small waiting helpers for integration tests. */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { EventEmitter } from 'node:events';
import type { PushtaskConfig } from '../../src/config/schema.js';

export interface Workspace {
  dir: string;
  path: (...parts: string[]) => string;
  write: (relative: string, content: string | Buffer) => string;
  append: (relative: string, content: string | Buffer) => void;
  cleanup: () => void;
}

export function createWorkspace(prefix = 'pushtask-test-'): Workspace {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const at = (...parts: string[]) => path.join(dir, ...parts);
  return {
    dir,
    path: at,
    write(relative, content) {
      fs.mkdirSync(path.dirname(at(relative)), { recursive: true });
      fs.writeFileSync(at(relative), content);
      return at(relative);
    },
    append(relative, content) {
      fs.appendFileSync(at(relative), content);
    },
    cleanup() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A local-transport config with quiet logs and fast retries, written relative to the workspace. */
export function testConfig(overrides: Partial<PushtaskConfig> & Pick<PushtaskConfig, 'watch'>): PushtaskConfig {
  return {
    transport: { type: 'local', dir: 'remote' },
    intervalMs: 200,
    log: { dir: 'logs', level: 'info', console: false },
    retry: { quickTries: 3, quickDelayMs: 50, longDelayMs: 200 },
    ...overrides,
    // Tests mostly start from an empty workspace: create watched folders unless a test says not to.
    watch: overrides.watch.map((entry) => ({ create: true, ...entry })),
  };
}

/** Regular files under `dir` (relative paths, sorted; sidecars and dot files included); [] if it is missing. */
export function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  // A file deleted between readdir and stat is simply not there any more.
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((name) => fs.statSync(path.join(dir, name), { throwIfNoEntry: false })?.isFile()).sort();
}

export function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** The file's sha256, or undefined when it does not exist (any other error is thrown). */
export function sha256IfPresent(file: string): string | undefined {
  try {
    return sha256(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * False while either file is missing, including one that vanishes between the check and the read:
 * a server that replaces a file by remove + rename (rclone's `serve sftp`, even behind
 * posix-rename) has it gone for a moment, and a poll that lands there must poll again, not throw.
 */
export function sameBytes(a: string, b: string): boolean {
  const hashA = sha256IfPresent(a);
  return hashA !== undefined && hashA === sha256IfPresent(b);
}

/** Polls `condition` every 20 ms until true; fails with `what` after `timeoutMs`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Resolves with the first event `name` whose payload passes `filter`. */
export function nextEvent<T>(emitter: EventEmitter, name: string, filter: (payload: T) => boolean = () => true, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(name, listener);
      reject(new Error(`Timed out after ${timeoutMs} ms waiting for event ${name}`));
    }, timeoutMs);
    const listener = (payload: T) => {
      if (!filter(payload)) return;
      clearTimeout(timer);
      emitter.off(name, listener);
      resolve(payload);
    };
    emitter.on(name, listener);
  });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits until status.json shows an empty queue and nothing in flight. */
export async function waitForIdle(spoolDir: string, timeoutMs = 10_000): Promise<void> {
  const statusFile = path.join(spoolDir, 'status.json');
  await waitFor(() => {
    if (!fs.existsSync(statusFile)) return false;
    const status = JSON.parse(fs.readFileSync(statusFile, 'utf8'));
    return status.queue.length === 0 && status.inFlight.length === 0;
  }, 'the agent to be idle', timeoutMs);
}
