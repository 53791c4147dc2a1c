/**
 * One connection's life, the wrapper every network transport puts around its operations: "run
 * this operation on this connection; fail it when the connection dies". A connection dies when
 * its socket closes, errors or is reset, when its keepalives go unanswered, or when an upload on
 * it stalls; every operation pending on it then fails at once with CONNECTION_LOST (the uploader
 * replaces a lost connection at once), instead of each waiting for its own timeout. The caller's
 * AbortSignal (the uploader's `operationTimeoutMs` bound, or a stop) ends the operation too, and
 * ends the connection with it: after an abandoned operation its protocol state is unknown.
 */
import { LINK_DEFAULTS, type LinkConfig } from '../config/schema.js';
import { PushtaskError, errorMessage } from '../shared/errors.js';

/** How a connection notices a silent drop and a stuck upload: config `link` (schema.ts). */
export type LinkSettings = LinkConfig;
export { LINK_DEFAULTS };

/** Longest a silent drop of an idle connection goes unnoticed. */
export function silentDropBound(link: LinkSettings): number {
  return link.keepaliveIntervalMs * (link.keepaliveCountMax + 1);
}

export class Lifeline {
  readonly #where: string;
  readonly #controller = new AbortController();
  readonly #onEnd: () => void;

  /**
   * @param where the connection, for error messages (`sftp://user@host:22/in`)
   * @param onEnd called once when the connection dies: release the library's client here
   */
  constructor(where: string, onEnd: () => void = () => undefined) {
    this.#where = where;
    this.#onEnd = onEnd;
  }

  get dead(): boolean {
    return this.#controller.signal.aborted;
  }

  /** Aborts (with a CONNECTION_LOST error as reason) when the connection dies. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** The connection is dead (closed, reset, keepalive timeout, stalled, or let go). Idempotent. */
  end(why: string, cause?: unknown): void {
    if (this.dead) return;
    const reason = new PushtaskError('CONNECTION_LOST', `Connection to ${this.#where} lost (${why})`, cause === undefined ? undefined : { cause });
    this.#controller.abort(reason);
    this.#onEnd();
  }

  /**
   * Ends the connection when `socket` receives nothing for `ms`: a silent drop. The protocol's
   * keepalives must make an idle but healthy connection answer within that time. Any byte
   * counts, so a busy connection whose keepalive replies queue behind data is not mistaken for dead.
   */
  watchSilence(socket: { on(event: 'data', listener: () => void): unknown; off(event: 'data', listener: () => void): unknown }, ms: number): void {
    if (this.dead) return;
    const timer = setTimeout(() => this.end(`nothing received for ${ms} ms: keepalives unanswered`), ms);
    timer.unref?.();
    const onData = () => timer.refresh();
    socket.on('data', onData);
    this.signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        socket.off('data', onData);
      },
      { once: true },
    );
  }

  /**
   * Runs `operation` on this connection. It settles as soon as the connection dies or `signal`
   * aborts, even if the library underneath never calls back. `progress` (pass it on to the
   * library's progress callback) restarts the stall clock; with `stallMs` set, an operation that
   * reports no progress for that long ends the connection.
   */
  async run<T>(
    signal: AbortSignal,
    what: string,
    operation: (signal: AbortSignal, progress: () => void) => Promise<T>,
    options: { stallMs?: number } = {},
  ): Promise<T> {
    if (this.dead) throw this.#controller.signal.reason as PushtaskError;
    signal.throwIfAborted();
    const controller = new AbortController();
    let rejectEarly!: (reason: unknown) => void;
    const early = new Promise<never>((_, reject) => {
      rejectEarly = reject;
    });
    const onDeath = () => {
      controller.abort(this.#controller.signal.reason);
      rejectEarly(this.#controller.signal.reason);
    };
    const onAbort = () => {
      controller.abort(signal.reason);
      rejectEarly(signal.reason);
      // The operation was abandoned midway: the connection's state is unknown.
      this.end(`${what} was abandoned: ${errorMessage(signal.reason)}`);
    };
    this.#controller.signal.addEventListener('abort', onDeath, { once: true });
    signal.addEventListener('abort', onAbort, { once: true });
    let stall: NodeJS.Timeout | undefined;
    const { stallMs } = options;
    const progress = () => stall?.refresh();
    if (stallMs) {
      stall = setTimeout(() => this.end(`${what} made no progress for ${stallMs} ms`), stallMs);
      stall.unref?.();
    }
    try {
      return await Promise.race([operation(controller.signal, progress), early]);
    } catch (error) {
      // Libraries report a dropped socket to the operation before (or instead of) their 'close'
      // event: give the connection's own events a turn, then name the real cause.
      if (!this.dead && !signal.aborted && isNetworkError(error)) this.end(errorMessage(error), error);
      else if (!this.dead && !signal.aborted) await new Promise((resolve) => setImmediate(resolve));
      if (this.dead && !signal.aborted && !(error instanceof PushtaskError && error.code === 'CONNECTION_LOST')) {
        const lost = this.#controller.signal.reason as PushtaskError;
        throw new PushtaskError('CONNECTION_LOST', `${what} failed: ${lost.message}`, { cause: error });
      }
      throw error;
    } finally {
      clearTimeout(stall);
      this.#controller.signal.removeEventListener('abort', onDeath);
      signal.removeEventListener('abort', onAbort);
    }
  }
}

/**
 * A connection that died while it was being made (its lifeline ended during the handshake) is a
 * failed connect, so the retry schedule applies; null for any other error.
 */
export function lostWhileConnecting(error: unknown, what: string): PushtaskError | null {
  if (!(error instanceof PushtaskError) || error.code !== 'CONNECTION_LOST') return null;
  return new PushtaskError('CONNECT_FAILED', `${what}: ${error.message}`, { cause: error });
}

const NETWORK_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'ENETUNREACH', 'EHOSTUNREACH', 'ENOTCONN', 'ERR_STREAM_DESTROYED']);

/** A socket-level failure (as opposed to a server's refusal of one operation). */
export function isNetworkError(error: unknown): boolean {
  for (let at: unknown = error, depth = 0; at && depth < 5; at = (at as { cause?: unknown }).cause, depth += 1) {
    const code = (at as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
    if (code === 'CONNECTION_LOST') return true;
    if (/\b(No response from server|Keepalive timeout|socket hang up|Not connected|closed connection unexpectedly|FIN packet|Channel not open|Connection lost)\b/i.test(errorMessage(at))) return true;
  }
  return false;
}
