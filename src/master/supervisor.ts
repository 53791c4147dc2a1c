/**
 * The subtask's supervisor: starts the child, waits (bounded) for it to report ready, restarts it
 * through RestartBackoff when it dies, and stops it in stages. One state machine, all its timing
 * on an injected clock, so every rule is unit-tested in milliseconds on a fake child:
 *
 *   idle ─start()→ starting ─ready→ running ─exit→ waiting ─delay→ restarting ─ready→ running
 *                  │ exit, fatal or no ready in time                │ exit, fatal or no ready in
 *                  │ (then killed): start() fails → stopped         │ time (then killed) → waiting
 *   any ─stop()→ stopping ─child gone→ stopped      (a stop() during starting cancels start())
 *
 * One Supervisor serves one start(): the owner creates a new one for the next start, so nothing
 * a stopped supervisor left behind (a timer, a late exit) can touch the next run.
 */
import { PushtaskError, errorMessage } from '../shared/errors.js';
import { RestartBackoff } from './restartBackoff.js';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** What the supervisor needs of a child process (SubtaskProcess, or a fake in unit tests). */
export interface SupervisedChild {
  readonly pid: number | undefined;
  /** Resolves when the child reports ready; rejects when it fails or exits before that. */
  readonly ready: Promise<void>;
  readonly exited: Promise<ExitInfo>;
  kill(): Promise<ExitInfo>;
  /** Asks the child to finish its work and exit; forces it after `timeoutMs`. */
  stopGracefully(timeoutMs: number): Promise<ExitInfo>;
}

export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** How long a (re)started subtask may take to report ready before it is killed. */
export const READY_TIMEOUT_MS = 20_000;

export type SupervisorState = 'idle' | 'starting' | 'running' | 'waiting' | 'restarting' | 'stopping' | 'stopped';

export interface SupervisorExit extends ExitInfo {
  pid: number | undefined;
  /** Why it ended, when the supervisor ended it (a restart that never reported ready). */
  reason?: string;
  restartInMs: number;
}

export interface SupervisorOptions<C extends SupervisedChild> {
  spawn: () => C;
  /** @default READY_TIMEOUT_MS */
  readyTimeoutMs?: number;
  /** @default systemClock */
  clock?: Clock;
  backoff?: RestartBackoff;
  /** A child reported ready (`restart`: after an unexpected exit). */
  onReady?: (child: C, restart: boolean) => void;
  /** A supervised child ended unexpectedly (or hung at a restart and was killed); it is restarted after `restartInMs`. */
  onExit?: (exit: SupervisorExit) => void;
}

/** start() was cancelled by stop(). */
export function startCancelledError(): PushtaskError {
  return new PushtaskError('ABORTED', 'start() was cancelled: stop() was called while the agent was starting');
}

export class Supervisor<C extends SupervisedChild> {
  readonly #spawn: () => C;
  readonly #readyTimeoutMs: number;
  readonly #clock: Clock;
  readonly #backoff: RestartBackoff;
  readonly #onReady: (child: C, restart: boolean) => void;
  readonly #onExit: (exit: SupervisorExit) => void;
  #state: SupervisorState = 'idle';
  #child: C | null = null;
  #readyTimer: unknown = null;
  #restartTimer: unknown = null;
  /** Why the supervisor killed the current child (reported with its exit). */
  #killReason: string | undefined;
  /** Settles the promise start() returned. */
  #startDone: { resolve: () => void; reject: (error: unknown) => void } | null = null;
  #stopping: Promise<void> | null = null;

  constructor(options: SupervisorOptions<C>) {
    this.#spawn = options.spawn;
    this.#readyTimeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS;
    this.#clock = options.clock ?? systemClock;
    this.#backoff = options.backoff ?? new RestartBackoff();
    this.#onReady = options.onReady ?? (() => undefined);
    this.#onExit = options.onExit ?? (() => undefined);
  }

  get state(): SupervisorState {
    return this.#state;
  }

  /** The current child, ready or not (null while waiting for a restart and after stop). */
  get child(): C | null {
    return this.#child;
  }

  /** Starts the first child; resolves once it is ready. Fails (the child gone) when it is not, or when stop() is called meanwhile. */
  start(): Promise<void> {
    if (this.#state !== 'idle') return Promise.reject(new Error(`Supervisor.start(): already ${this.#state}`));
    this.#state = 'starting';
    const started = new Promise<void>((resolve, reject) => {
      this.#startDone = { resolve, reject };
    });
    this.#launch();
    return started;
  }

  #launch(): void {
    const child = this.#spawn();
    this.#child = child;
    this.#killReason = undefined;
    this.#readyTimer = this.#clock.setTimeout(() => this.#onReadyTimeout(child), this.#readyTimeoutMs);
    child.ready.then(
      () => this.#onChildReady(child),
      (error: unknown) => this.#onChildFailed(child, error),
    );
    void child.exited.then((exit) => this.#onChildExit(child, exit));
  }

  #isCurrent(child: C): boolean {
    return child === this.#child && (this.#state === 'starting' || this.#state === 'running' || this.#state === 'restarting');
  }

  #clearReadyTimer(): void {
    if (this.#readyTimer !== null) this.#clock.clearTimeout(this.#readyTimer);
    this.#readyTimer = null;
  }

  #onChildReady(child: C): void {
    if (!this.#isCurrent(child) || this.#state === 'running') return;
    this.#clearReadyTimer();
    const restart = this.#state === 'restarting';
    this.#state = 'running';
    this.#backoff.started(this.#clock.now());
    this.#onReady(child, restart);
    this.#finishStart();
  }

  #onReadyTimeout(child: C): void {
    this.#readyTimer = null;
    if (!this.#isCurrent(child) || this.#state === 'running') return;
    this.#failBeforeReady(child, new PushtaskError('SUBTASK_START_FAILED', `The subtask (pid ${child.pid}) did not report ready within ${this.#readyTimeoutMs / 1000} s; it was killed`));
  }

  #onChildFailed(child: C, error: unknown): void {
    if (!this.#isCurrent(child) || this.#state === 'running') return;
    this.#failBeforeReady(child, error);
  }

  /** A child that will not become ready: killed; at the first start start() fails, at a restart its exit schedules the next one. */
  #failBeforeReady(child: C, error: unknown): void {
    this.#clearReadyTimer();
    this.#killReason ??= errorMessage(error);
    if (this.#state === 'starting') {
      this.#state = 'stopping';
      this.#child = null;
      const done = this.#startDone;
      this.#startDone = null;
      this.#stopping = child.kill().then(() => {
        this.#state = 'stopped';
        done?.reject(error);
      });
      return;
    }
    void child.kill();
  }

  #onChildExit(child: C, exit: ExitInfo): void {
    if (!this.#isCurrent(child)) return;
    if (this.#state === 'starting') {
      // A fake or odd child may exit without rejecting `ready`: the same as a failed start.
      this.#failBeforeReady(child, new PushtaskError('SUBTASK_START_FAILED', `The subtask exited before it was ready (code ${exit.code}, signal ${exit.signal})`));
      return;
    }
    this.#clearReadyTimer();
    this.#child = null;
    const delay = this.#backoff.onExit(this.#clock.now());
    this.#state = 'waiting';
    this.#restartTimer = this.#clock.setTimeout(() => {
      this.#restartTimer = null;
      if (this.#state !== 'waiting') return;
      this.#state = 'restarting';
      this.#launch();
    }, delay);
    this.#onExit({ ...exit, pid: child.pid, ...(this.#killReason ? { reason: this.#killReason } : {}), restartInMs: delay });
  }

  #finishStart(): void {
    const done = this.#startDone;
    this.#startDone = null;
    done?.resolve();
  }

  /**
   * Stops the child (at once, or gracefully within `gracefulTimeoutMs`) and supervision. A start()
   * still waiting is cancelled (it fails). Idempotent: calling it again returns the same promise.
   */
  stop(options: { gracefulTimeoutMs?: number } = {}): Promise<void> {
    if (this.#stopping) return this.#stopping;
    if (this.#state === 'idle' || this.#state === 'stopped') {
      this.#state = 'stopped';
      return Promise.resolve();
    }
    const wasReady = this.#state === 'running';
    this.#state = 'stopping';
    this.#clearReadyTimer();
    if (this.#restartTimer !== null) this.#clock.clearTimeout(this.#restartTimer);
    this.#restartTimer = null;
    const child = this.#child;
    const done = this.#startDone;
    this.#startDone = null;
    this.#stopping = (async () => {
      if (child) {
        // A child that is not ready yet has nothing to finish: graceful only makes sense when running.
        if (wasReady && options.gracefulTimeoutMs !== undefined) await child.stopGracefully(options.gracefulTimeoutMs);
        else await child.kill();
      }
      this.#child = null;
      this.#state = 'stopped';
      done?.reject(startCancelledError());
    })();
    return this.#stopping;
  }
}
