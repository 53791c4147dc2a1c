/**
 * Sees notifies: a sidecar whose mtime moved forward means "new data". Every interval each known
 * sidecar is stat'ed (the fallback that always works); a file-system watch on the sidecars'
 * folders sees a touch within milliseconds in between.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../shared/logger.js';
import { isSidecar, sidecarOf, sourceOfSidecar } from '../shared/sidecar.js';

/** Per sidecar, the newest mtime already acted upon. */
export class SidecarClock {
  readonly #handled = new Map<string, number>();

  /** Sets the starting point: touches at or before `mtimeMs` are considered handled. */
  baseline(sidecar: string, mtimeMs: number): void {
    if (!this.#handled.has(sidecar)) this.#handled.set(sidecar, mtimeMs);
  }

  /** True (once) when the sidecar was touched after the last handled touch. */
  advance(sidecar: string, mtimeMs: number): boolean {
    const handled = this.#handled.get(sidecar) ?? 0;
    if (mtimeMs <= handled) return false;
    this.#handled.set(sidecar, mtimeMs);
    return true;
  }

  forget(sidecar: string): void {
    this.#handled.delete(sidecar);
  }
}

/**
 * The sidecar's mtime, or null when there is none to read. Never throws: a sidecar anyone can
 * create may be a symlink loop (ELOOP) or sit under a file (ENOTDIR), and a throw from a watch
 * callback would crash the subtask, and at start again and again.
 */
export function sidecarMtime(sidecar: string): number | null {
  try {
    return fs.statSync(sidecar, { throwIfNoEntry: false })?.mtimeMs ?? null;
  } catch {
    return null;
  }
}

/** Watches the sidecars of a fixed list of data files. */
export class FileSidecarWatcher {
  readonly #files: readonly string[];
  readonly #clock: SidecarClock;
  readonly #onNotified: (file: string) => void;
  readonly #logger: Logger;
  readonly #watchers = new Map<string, fs.FSWatcher | null>();
  readonly #known: Set<string>;

  constructor(files: readonly string[], clock: SidecarClock, onNotified: (file: string) => void, logger: Logger) {
    this.#files = files;
    this.#clock = clock;
    this.#onNotified = onNotified;
    this.#logger = logger;
    this.#known = new Set(files.map(sidecarOf));
  }

  start(): void {
    for (const dir of new Set(this.#files.map((file) => path.dirname(file)))) this.#watchDir(dir);
  }

  #watchDir(dir: string): void {
    try {
      const watcher = fs.watch(dir, { persistent: false }, (_event, name) => {
        if (!name || !isSidecar(name)) return;
        const sidecar = path.join(dir, name);
        if (this.#known.has(sidecar)) this.check(sidecar);
      });
      watcher.on('error', (error) => {
        this.#logger.debug({ err: error }, `Watch on ${dir} failed; polling every interval still sees notifies`);
        watcher.close();
        this.#watchers.set(dir, null);
      });
      this.#watchers.set(dir, watcher);
    } catch (error) {
      // Folder missing (yet): polling covers it and the watch is retried on each poll.
      this.#watchers.set(dir, null);
      this.#logger.debug({ err: error }, `Cannot watch ${dir} yet; relying on polling`);
    }
  }

  check(sidecar: string): void {
    const mtime = sidecarMtime(sidecar);
    if (mtime !== null && this.#clock.advance(sidecar, mtime)) this.#onNotified(sourceOfSidecar(sidecar));
  }

  poll(): void {
    for (const [dir, watcher] of this.#watchers) if (watcher === null) this.#watchDir(dir);
    for (const sidecar of this.#known) this.check(sidecar);
  }

  close(): void {
    for (const watcher of this.#watchers.values()) watcher?.close();
    this.#watchers.clear();
  }
}
