/**
 * `ftp` transport (basic-ftp): explicit FTPS by default, implicit FTPS or plain FTP on request.
 *
 * One transport is one connection: one basic-ftp `Client`, which runs one command at a time, so
 * uploads are queued one behind the other (the uploader runs `transfers` transports for
 * parallelism). Every upload goes to a temporary name in the target folder, is checked with SIZE
 * (some servers report a cut upload as a success), gets its mtime (MFMT) and is then renamed
 * over the final name. Paths are absolute, built only with `joinRemote` from `remoteDir`, so the
 * client never changes directory and never leaves it.
 *
 * Retries, timeouts and dead time belong to the uploader: a failure here just throws a
 * PushtaskError that says what went wrong and how to fix it.
 */
import fs from 'node:fs/promises';
import { posix } from 'node:path';
import { createReadStream } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import type { Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { Client, FTPError, FileType } from 'basic-ftp';
import type { FtpTransportConfig } from '../config/schema.js';
import { PushtaskError, errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { LINK_DEFAULTS, Lifeline, lostWhileConnecting, type LinkSettings } from './lifeline.js';
import { assertFtpSafe, joinRemote, joinRemoteDir } from './remotePath.js';
import { remoteTempName } from './tempNames.js';
import { StrayTemps } from './strayTemps.js';
import type { BandwidthLimiter } from '../shared/bandwidth.js';
import { meteredReadStream } from '../shared/meteredStream.js';
import type { RemoteAppender, RemoteEntry, Transport, TransportCapabilities, TransportContext, UploadRequest, UploadResult } from './types.js';

/** How long close() waits for a polite QUIT before dropping the connection. */
const QUIT_TIMEOUT_MS = 1000;
/**
 * vsftpd (3.0.3, Debian 12) fails most empty uploads over TLS with "tlsv1 alert decode error" when
 * the data connection's TLS shutdown follows its handshake at once; a short pause avoids it
 * (10 ms was enough in tests, even on a loaded machine). Only empty files pay it.
 */
const EMPTY_UPLOAD_PAUSE_MS = 100;

/** Node's codes for a server certificate that could not be verified. */
const CERTIFICATE_ERRORS = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * Data connections without Nagle's algorithm: the last short segment of an upload would otherwise
 * wait for the ACK of the one before (up to the server's delayed-ACK time) before the 226 can
 * come. basic-ftp makes every data socket with `_newSocket()` (its test seam), so this one place
 * covers passive and extended-passive connections.
 */
function noDelayOnDataSockets(client: Client): void {
  const context = client.ftp as unknown as { _newSocket(): Socket };
  const make = context._newSocket.bind(context);
  context._newSocket = () => make().setNoDelay(true);
}

/** Where a connection attempt failed: decides which error the user gets. */
type Stage = 'connect' | 'tls' | 'login' | 'setup';

/** One connection and what it learnt about the server. A new connect() starts a new session. */
interface Session {
  client: Client;
  /** Absolute remote folder: remoteDir resolved against the login folder. */
  baseDir: string;
  supportsMfmt: boolean;
  /** Folders created (or found) in this session: MKD is sent once per folder. */
  knownDirs: Set<string>;
  /** Why this session can no longer be used (an error ended it); null while usable. */
  brokenBy: string | null;
  /** An upload is running: close() must not wait for a polite QUIT. */
  busy: boolean;
  /** The current client's life: every operation on it fails at once when its control connection dies. */
  life: Lifeline;
  /** Probes the control connection with NOOP while it is idle (config `link`). */
  keepalive: NodeJS.Timeout;
  /** When the last command of this session finished (performance clock). */
  lastUsedAt: number;
}

/** Warnings that would repeat for every connection to the same server: said once per process. */
const warnedOnce = new Set<string>();

export const FTP_CAPABILITIES: TransportCapabilities = { append: true, list: true, read: true, maxLanes: 64 };

export class FtpTransport implements Transport {
  readonly description: string;
  readonly #config: FtpTransportConfig;
  readonly #port: number;
  readonly #logger: Logger;
  #session: Session | null = null;
  readonly #strays: StrayTemps;
  readonly #bandwidth: BandwidthLimiter | null;
  /** The tail of the upload queue: basic-ftp rejects a command while another one runs. */
  #queue: Promise<unknown> = Promise.resolve();
  readonly #link: LinkSettings;
  readonly #agentTag: string | undefined;
  /**
   * What the first session learnt (FEAT, PWD) and the folders made so far: a reconnect skips
   * those round trips (on a slow link a reconnect is mostly round trips). Folders are forgotten
   * after any failed operation, in case one was removed on the server.
   */
  #server: { features: Map<string, string>; baseDir: string } | null = null;
  readonly #knownDirs = new Set<string>();

  constructor(config: FtpTransportConfig, context: TransportContext) {
    this.#config = config;
    this.#port = config.port ?? (config.secure === 'implicit' ? 990 : 21);
    this.#logger = context.logger;
    this.#strays = context.strays ?? new StrayTemps();
    this.#bandwidth = context.bandwidth ?? null;
    this.#link = context.link ?? LINK_DEFAULTS;
    this.#agentTag = context.agentTag;
    this.description = describeTarget(config, this.#port);
    if (config.secure === false) {
      this.#warnOnce(
        'clear-text',
        `FTP without TLS to ${this.#hostPort()} (secure: false): the password and every file travel in clear text. ` +
          'Use secure: true (explicit FTPS) if the server offers it.',
      );
    }
  }

  async connect(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    await this.close();
    const { client, known } = await this.#openClient(signal);
    const session: Session = {
      client,
      ...known,
      knownDirs: this.#knownDirs,
      brokenBy: null,
      busy: false,
      life: this.#lifeOf(client),
      keepalive: setInterval(() => this.#probe(session), this.#link.keepaliveIntervalMs).unref(),
      lastUsedAt: performance.now(),
    };
    this.#session = session;
    await this.#strays.removeWith(async (temp) => void (await client.sendIgnoringError(`DELE ${temp}`)), this.#logger, this.#hostPort());
  }

  upload(request: UploadRequest): Promise<UploadResult> {
    return this.#inSession('upload to', request.remotePath, request.signal, async (session, target) => {
      const size = await snapshotSize(request.localPath);
      await this.#deliver(session, request, target, size);
      return { bytes: size };
    }, request.onProgress);
  }

  async close(): Promise<void> {
    const session = this.#session;
    this.#session = null;
    if (!session) return;
    clearInterval(session.keepalive);
    if (session.busy || session.life.dead) session.client.close();
    else await quitQuietly(session.client);
  }

  readonly append: RemoteAppender = {
    size: (remotePath, signal) => this.#inSession('SIZE of', remotePath, signal, ({ client }, target) => remoteSize(client, target)),
    read: (remotePath, start, length, signal) =>
      this.#inSession('download of', remotePath, signal, async ({ client }, target) => {
        const chunks: Buffer[] = [];
        const sink = new Writable({
          write(chunk: Buffer, _encoding, done) {
            chunks.push(chunk);
            done();
          },
        });
        // REST + RETR: from `start` to the end, which is the tail we compare (a few KiB).
        await client.downloadTo(sink, target, start);
        return Buffer.concat(chunks).subarray(0, length);
      }),
    write: (request) =>
      this.#inSession('append to', request.remotePath, request.signal, async (session, target) => {
        // APPE writes at the server's end of the file, which the uploader has just checked is `remoteSize`.
        await session.client.appendFrom(this.#source(request.localPath, request.localStart, request.signal), target);
        if (session.supportsMfmt) await this.#setMtime(session.client, target, request.mtime);
      }),
  };

  /**
   * Runs one operation on the session, queued (basic-ftp rejects a command while another one
   * runs). Any failure breaks the session until the uploader reconnects.
   */
  #inSession<T>(
    what: string,
    remotePath: string,
    signal: AbortSignal,
    operation: (session: Session, target: string) => Promise<T>,
    onProgress?: (bytes: number) => void,
  ): Promise<T> {
    const next = this.#queue.then(async () => {
      signal.throwIfAborted();
      const session = this.#requireSession();
      // joinRemote refuses anything that would leave remoteDir (UNSAFE_PATH), before any network I/O.
      const target = joinRemote(session.baseDir, remotePath);
      assertFtpSafe(target);
      session.busy = true;
      try {
        await this.#reopenIfDropped(session, signal);
        // basic-ftp has no cancellation: the lifeline closes the client when the connection dies
        // or the signal aborts, which fails the command in flight at once.
        return await session.life.run(signal, `FTP ${what} ${target}`, (_signal, progress) => {
          session.client.trackProgress((info) => {
            progress();
            onProgress?.(info.bytes);
          });
          return operation(session, target);
        }, { stallMs: this.#link.stallTimeoutMs });
      } catch (error) {
        session.client.close();
        this.#knownDirs.clear();
        const failure = this.#operationError(error, what, target, signal);
        // basic-ftp closes itself after most errors, and the session state is unknown after the
        // rest: fail fast until the uploader closes and connects again.
        session.brokenBy = failure.message;
        throw failure;
      } finally {
        session.client.trackProgress();
        session.busy = false;
        session.lastUsedAt = performance.now();
        // close() or connect() ran meanwhile and let go of this session: its client is ours to end.
        if (this.#session !== session) session.client.close();
      }
    });
    this.#queue = next.catch(() => undefined);
    return next;
  }

  #requireSession(): Session {
    const session = this.#session;
    if (session && session.brokenBy === null) return session;
    const why = session ? `the last upload failed: ${session.brokenBy}` : 'connect() first';
    throw new PushtaskError(session ? 'CONNECTION_LOST' : 'CONNECT_FAILED', `Not connected to ${this.description} (${why})`);
  }

  /** A lifeline that ends when the client's control connection closes or errors. */
  #lifeOf(client: Client): Lifeline {
    const life = new Lifeline(this.description, () => client.close());
    const socket = client.ftp.socket;
    if (socket.destroyed || client.closed) life.end('closed');
    socket.once('close', () => life.end('control connection closed'));
    socket.once('error', (error: Error) => life.end(`control connection: ${errorMessage(error)}`, error));
    return life;
  }

  /**
   * Keepalive: NOOP on a control connection idle for a keepalive interval; no answer within
   * keepaliveCountMax intervals ends the connection (a silent drop). Queued like any command,
   * so it never interleaves with one.
   */
  #probe(session: Session): void {
    const { keepaliveIntervalMs, keepaliveCountMax } = this.#link;
    if (this.#session !== session || session.busy || session.life.dead || session.brokenBy !== null) return;
    if (performance.now() - session.lastUsedAt < keepaliveIntervalMs) return;
    const waitMs = keepaliveIntervalMs * Math.max(1, keepaliveCountMax);
    const probe = this.#queue.then(async () => {
      if (this.#session !== session || session.life.dead || session.client.closed) return;
      try {
        // No answer within waitMs ends the connection; run() settles even if basic-ftp never calls back.
        await session.life.run(new AbortController().signal, 'keepalive NOOP', () => session.client.send('NOOP'), { stallMs: waitMs });
        session.lastUsedAt = performance.now();
      } catch (error) {
        session.life.end(`NOOP failed: ${errorMessage(error)}`, error);
      }
    });
    this.#queue = probe.catch(() => undefined);
  }

  /** A server drops idle connections (its idle timeout, a restart): routine, not a failure. */
  async #reopenIfDropped(session: Session, signal: AbortSignal): Promise<void> {
    if (!session.client.closed && !session.life.dead) return;
    this.#logger.debug(`The connection to ${this.#hostPort()} was closed while idle; opening a new one`);
    session.client.close();
    ({ client: session.client } = await this.#openClient(signal));
    session.life = this.#lifeOf(session.client);
  }

  // ── Connecting ──────────────────────────────────────────────────────────────────────────────

  /**
   * Opens one logged-in client: TCP (or implicit TLS), AUTH TLS, login, binary mode, and what the
   * session needs to know (cached after the first). Each step must be answered within
   * stallTimeoutMs: basic-ftp's TLS upgrade has no timeout of its own, so a link that went silent
   * during the handshake would otherwise hold the connect until operationTimeoutMs.
   */
  async #openClient(signal: AbortSignal): Promise<{ client: Client; known: Pick<Session, 'baseDir' | 'supportsMfmt'> }> {
    const tlsOptions = await this.#tlsOptions();
    // basic-ftp's inactivity timeout: a reply or a transfer that moves nothing for this long fails.
    const client = new Client(this.#link.stallTimeoutMs);
    noDelayOnDataSockets(client);
    client.ftp.log = (message: string) => this.#logger.trace(`ftp ${this.#hostPort()}: ${message}`);
    const attempt = new Lifeline(this.description, () => client.close());
    let stage: Stage = 'connect';
    try {
      return await attempt.run(
        signal,
        `connecting to ${this.#hostPort()}`,
        async (_signal, answered) => {
          const { host, secure, username, password } = this.#config;
          if (secure === 'implicit') {
            stage = 'tls';
            await client.connectImplicitTLS(host, this.#port, tlsOptions);
          } else {
            await client.connect(host, this.#port);
          }
          answered();
          // Commands wait for replies; Nagle's algorithm would hold a command behind the last ACK.
          client.ftp.socket.setNoDelay(true);
          if (secure === true) {
            stage = 'tls';
            await client.useTLS(tlsOptions);
            answered();
          }
          stage = 'login';
          // As basic-ftp's access(): UTF-8 before login, for non-ASCII user names and passwords.
          await client.sendIgnoringError('OPTS UTF8 ON');
          answered();
          await client.login(username, password ?? '');
          answered();
          stage = 'setup';
          await this.#settings(client, answered);
          const known = await this.#learnServer(client);
          return { client, known };
        },
        { stallMs: this.#link.stallTimeoutMs },
      );
    } catch (error) {
      client.close();
      throw this.#connectError(error, stage, signal);
    }
  }

  async #tlsOptions(): Promise<ConnectionOptions> {
    const { host, tls } = this.#config;
    // `host` makes data connections resume the control connection's TLS session (basic-ftp #166).
    const options: ConnectionOptions = { host, rejectUnauthorized: tls.rejectUnauthorized };
    if (!tls.ca) return options;
    try {
      return { ...options, ca: await fs.readFile(tls.ca, 'utf8') };
    } catch (error) {
      throw new PushtaskError('CONNECT_FAILED', `Cannot read the CA certificate tls.ca (${tls.ca}): ${errorMessage(error)}`, { cause: error });
    }
  }

  /**
   * basic-ftp's useDefaultSettings without its round trips we do not need: FEAT once per
   * transport (cached), TYPE I, and PBSZ 0 + PROT P over TLS. STRU F is every server's default;
   * OPTS UTF8 ON was sent before login.
   */
  async #settings(client: Client, answered: () => void): Promise<void> {
    const features = this.#server?.features ?? (await client.features());
    answered();
    const supportsMLSD = features.has('MLST');
    // As useDefaultSettings: MLSD listings where offered (`pushtask monitor`).
    if (supportsMLSD) {
      client.availableListCommands = ['MLSD', 'LIST -a', 'LIST'];
      await client.sendIgnoringError('OPTS MLST type;size;modify;unique;unix.mode;unix.owner;unix.group;unix.ownername;unix.groupname;');
      answered();
    }
    await client.send('TYPE I');
    answered();
    if (client.ftp.hasTLS) {
      await client.sendIgnoringError('PBSZ 0');
      answered();
      await client.sendIgnoringError('PROT P');
      answered();
    }
    this.#server = { features, baseDir: this.#server?.baseDir ?? '' };
  }

  /** FEAT decides whether MFMT is used; PWD anchors a relative remoteDir at the login folder (both once per transport). */
  async #learnServer(client: Client): Promise<Pick<Session, 'baseDir' | 'supportsMfmt'>> {
    const known = this.#server;
    if (known?.baseDir) return { baseDir: known.baseDir, supportsMfmt: known.features.has('MFMT') };
    const features = known?.features ?? (await client.features());
    const { remoteDir } = this.#config;
    if (remoteDir.startsWith('/')) return { baseDir: posix.normalize(remoteDir), supportsMfmt: features.has('MFMT') };
    let home: string | null = null;
    try {
      home = await client.pwd();
    } catch (error) {
      if (!isFtpReply(error) || client.closed) throw error;
      this.#logger.debug(`PWD failed on ${this.#hostPort()} (${errorMessage(error)}); using remoteDir ${remoteDir} as given`);
    }
    const baseDir = home === null || remoteDir.startsWith('/') ? posix.normalize(remoteDir) : posix.join(home, remoteDir);
    this.#server = { features, baseDir };
    return { baseDir, supportsMfmt: features.has('MFMT') };
  }

  // ── Uploading ───────────────────────────────────────────────────────────────────────────────

  /** Temporary name → size check → mtime → rename over the final name. */
  async #deliver(session: Session, request: UploadRequest, target: string, size: number): Promise<void> {
    const { client } = session;
    const folder = posix.dirname(target);
    await ensureFolder(client, folder, session.knownDirs);
    const temp = remoteTempName(target, this.#agentTag);
    await request.onTemporaryName?.(temp);
    try {
      await client.uploadFrom(size === 0 ? emptyAfter(EMPTY_UPLOAD_PAUSE_MS) : this.#source(request.localPath, 0, request.signal), temp);
      await this.#verifySize(client, temp, size);
      if (session.supportsMfmt) await this.#setMtime(client, temp, request.mtime);
      else this.#noteNoMfmt();
      await this.#replace(client, temp, target);
    } catch (error) {
      // Removed now, or over the next connection if this one is gone.
      if (client.closed || session.life.dead) this.#strays.note(temp);
      else await client.sendIgnoringError(`DELE ${temp}`).catch(() => this.#strays.note(temp));
      throw error;
    }
  }

  /** What a data connection sends: the file, paced by `bandwidthLimit` when one is set. */
  #source(localPath: string, start: number, signal: AbortSignal): Readable | string {
    if (this.#bandwidth) return meteredReadStream(localPath, start, this.#bandwidth, signal);
    return start === 0 ? localPath : createReadStream(localPath, { start });
  }

  /** pure-ftpd and others answer 226 to a STOR whose data connection was cut: trust only SIZE. */
  async #verifySize(client: Client, remote: string, expected: number): Promise<void> {
    const reply = await client.sendIgnoringError(`SIZE ${remote}`);
    if (isNotImplemented(reply.code)) return this.#noteNoSize('it does not support SIZE');
    if (reply.code >= 400) {
      // The file just stored is not there: the STOR's 226 was not true.
      throw new PushtaskError('UPLOAD_FAILED', `The server reported ${remote} as stored, but SIZE answered: ${reply.message}`);
    }
    const actual = /^213 (\d+)\s*$/.exec(reply.message)?.[1];
    if (actual === undefined) return this.#noteNoSize(`it answered SIZE with "${reply.message}"`);
    if (Number(actual) !== expected) {
      throw new PushtaskError(
        'UPLOAD_FAILED',
        `The server stored ${actual} of ${expected} bytes of ${remote} although it reported success (a cut data connection); the final file was left untouched`,
      );
    }
  }

  /** Best effort: a server that refuses MFMT for a file still got the file. */
  async #setMtime(client: Client, remote: string, mtime: Date): Promise<void> {
    try {
      await client.send(`MFMT ${formatMfmtTime(mtime)} ${remote}`);
    } catch (error) {
      if (!isFtpReply(error) || client.closed) throw error;
      this.#logger.debug(`MFMT on ${remote} was refused (${errorMessage(error)}); the file keeps the upload time`);
    }
  }

  /**
   * RNFR/RNTO over the target. IIS and FileZilla Server refuse to rename onto an existing file:
   * then the target is deleted and the rename repeated, which leaves a moment without the file.
   */
  async #replace(client: Client, temp: string, target: string): Promise<void> {
    // RNFR and RNTO are sent one by one: only a refused RNTO may lead to deleting the target.
    await client.send(`RNFR ${temp}`);
    try {
      await client.send(`RNTO ${target}`);
      return;
    } catch (error) {
      if (!isFtpReply(error) || client.closed) throw error;
      const deleted = await client.sendIgnoringError(`DELE ${target}`);
      // Nothing to delete: the refusal was about something else, and stands.
      if (deleted.code >= 400) throw error;
      this.#warnOnce(
        'non-atomic-replace',
        `${this.#hostPort()} refuses to rename onto an existing file (${errorMessage(error)}): replacing deletes the old file first, ` +
          'so the final name is briefly missing (never partial).',
      );
    }
    await client.send(`RNFR ${temp}`);
    await client.send(`RNTO ${target}`);
  }

  // ── Errors ──────────────────────────────────────────────────────────────────────────────────

  #connectError(error: unknown, stage: Stage, signal: AbortSignal): PushtaskError {
    if (signal.aborted) return abortError(signal, `Connecting to ${this.description}`);
    const lost = lostWhileConnecting(error, `Connecting to ${this.#hostPort()} failed during ${stage}`);
    if (lost) return lost;
    if (error instanceof PushtaskError) return error;
    const where = this.#hostPort();
    const cause = { cause: error };
    const code = (error as { code?: unknown } | null)?.code;
    if (typeof code === 'string' && CERTIFICATE_ERRORS.has(code)) {
      return new PushtaskError('CERTIFICATE_REJECTED', this.#certificateAdvice(code, errorMessage(error)), cause);
    }
    if (isFtpReply(error)) return this.#replyError(error, stage, where, cause);
    if (typeof code === 'string' && ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT'].includes(code)) {
      return new PushtaskError('CONNECT_FAILED', `Cannot connect to ${where}: ${networkReason(code)}`, cause);
    }
    if (stage === 'tls') {
      const hint =
        this.#config.secure === 'implicit'
          ? " The port may expect plain FTP or explicit FTPS: try secure: true (and the server's explicit port, usually 21)."
          : '';
      return new PushtaskError('CONNECT_FAILED', `TLS handshake with ${where} failed: ${errorMessage(error)}.${hint}`, cause);
    }
    return new PushtaskError('CONNECT_FAILED', `Connection to ${where} failed during ${stage}: ${errorMessage(error)}`, cause);
  }

  /** The server answered, but said no. */
  #replyError(error: FTPError, stage: Stage, where: string, cause: { cause: unknown }): PushtaskError {
    const reply = errorMessage(error);
    if (error.code === 421) {
      return new PushtaskError('CONNECT_FAILED', `${where} turned the session away: ${reply} (connection limit or shutdown; will retry)`, cause);
    }
    if (stage === 'tls') {
      return new PushtaskError(
        'CONNECT_FAILED',
        `${where} does not offer TLS (AUTH TLS answered: ${reply}). Set secure: false to allow plain FTP, where the password travels in clear text.`,
        cause,
      );
    }
    if (stage === 'login' && /TLS|SSL|encrypt/i.test(reply)) {
      return new PushtaskError('CONNECT_FAILED', `${where} requires encryption before login (${reply}): set secure: true`, cause);
    }
    if (stage === 'login' && [430, 530, 532].includes(error.code)) {
      return new PushtaskError('AUTH_FAILED', `Login to ${where} as user "${this.#config.username}" was refused: ${reply}`, cause);
    }
    return new PushtaskError('CONNECT_FAILED', `${where} refused the session during ${stage}: ${reply}`, cause);
  }

  #certificateAdvice(code: string, detail: string): string {
    const where = this.#hostPort();
    const { ca } = this.#config.tls;
    const relax = 'tls: { rejectUnauthorized: false } turns verification off (test servers only)';
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      return `The TLS certificate of ${where} is not valid for the name "${this.#config.host}" (${detail}). Connect with a host name the certificate lists, or ${relax}.`;
    }
    if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
      return `The TLS certificate of ${where} is outside its validity period (${code}: ${detail}). Renew it on the server, or ${relax}.`;
    }
    const fix = ca
      ? `It is not signed by the CA in tls.ca (${ca}): give the CA that issued it`
      : "If the server uses a self-signed certificate or a private CA, set tls: { ca: 'path/to/ca.pem' } (that CA's certificate, PEM)";
    return `The TLS certificate of ${where} cannot be verified (${code}: ${detail}). ${fix}; ${relax}.`;
  }

  #operationError(error: unknown, what: string, target: string, signal: AbortSignal): PushtaskError {
    if (signal.aborted) return abortError(signal, `FTP ${what} ${target}`);
    if (error instanceof PushtaskError) return error;
    const transient = isFtpReply(error) && (error.code === 421 || error.code === 426) ? ' (transient: will be retried)' : '';
    return new PushtaskError('UPLOAD_FAILED', `FTP ${what} ${target} on ${this.#hostPort()} failed: ${errorMessage(error)}${transient}`, {
      cause: error,
    });
  }

  // ── Notes said once ────────────────────────────────────────────────────────────────────────

  /** The uploader runs several transports to one server: the same warning once is enough. */
  #warnOnce(kind: string, message: string): void {
    const key = `${kind} ${this.description}`;
    if (warnedOnce.has(key)) return;
    warnedOnce.add(key);
    this.#logger.warn(message);
  }

  #noteNoMfmt(): void {
    const key = `no-mfmt ${this.description}`;
    if (warnedOnce.has(key)) return;
    warnedOnce.add(key);
    this.#logger.debug(`${this.#hostPort()} does not support MFMT: remote files get the upload time as their mtime`);
  }

  #noteNoSize(why: string): void {
    this.#warnOnce('no-size', `${this.#hostPort()} cannot confirm the size of uploads (${why}): a truncated upload would go unnoticed`);
  }

  #hostPort(): string {
    return hostPort(this.#config.host, this.#port);
  }

  // ── Reading (pushtask monitor) ──────────────────────────────────────────────────────────────

  /** LIST/MLSD; a file without a parsed time (plain LIST) gets it from MDTM. Queued like uploads. */
  list(remoteDir: string, signal: AbortSignal): Promise<RemoteEntry[]> {
    return this.#queued(signal, (session) => `list ${joinRemoteDir(session.baseDir, remoteDir)}`, async (client, session) => {
      const dir = joinRemoteDir(session.baseDir, remoteDir);
      const entries: RemoteEntry[] = [];
      for (const info of await client.list(dir)) {
        if (info.name === '.' || info.name === '..') continue;
        const kind = info.type === FileType.File ? 'file' : info.type === FileType.Directory ? 'dir' : 'other';
        let mtime = info.modifiedAt;
        if (!mtime && kind === 'file') mtime = await client.lastMod(posix.join(dir, info.name)).catch(() => undefined);
        entries.push({ name: info.name, kind, size: info.size, mtime: mtime ?? new Date(Number.NaN) });
      }
      if (entries.length === 0) await assertFolder(client, dir);
      return entries;
    });
  }

  read(remotePath: string, maxBytes: number, signal: AbortSignal): Promise<Buffer> {
    return this.#queued(signal, (session) => `read ${joinRemote(session.baseDir, remotePath)}`, async (client, session) => {
      const file = joinRemote(session.baseDir, remotePath);
      const chunks: Buffer[] = [];
      let bytes = 0;
      const sink = new Writable({
        write(chunk: Buffer, _encoding, done) {
          bytes += chunk.length;
          if (bytes > maxBytes) return done(new Error(`it holds more than the ${maxBytes} bytes expected`));
          chunks.push(chunk);
          done();
        },
      });
      await client.downloadTo(sink, file);
      return Buffer.concat(chunks);
    });
  }

  /** One read-only operation on the session, behind the upload queue; an abort closes the client. */
  #queued<T>(signal: AbortSignal, what: (session: Session) => string, run: (client: Client, session: Session) => Promise<T>): Promise<T> {
    const next = this.#queue.then(async () => {
      signal.throwIfAborted();
      const session = this.#requireSession();
      session.busy = true;
      try {
        await this.#reopenIfDropped(session, signal);
        return await session.life.run(signal, what(session), () => run(session.client, session), { stallMs: this.#link.stallTimeoutMs });
      } catch (error) {
        // The client's state is unknown after a failed command: the next operation opens a new one.
        session.client.close();
        if (signal.aborted) throw abortError(signal, `${what(session)} on ${this.#hostPort()}`);
        if (error instanceof PushtaskError) throw error;
        throw new PushtaskError('REMOTE_READ_FAILED', `Cannot ${what(session)} on ${this.#hostPort()}: ${errorMessage(error)}`, { cause: error });
      } finally {
        session.busy = false;
        session.lastUsedAt = performance.now();
      }
    });
    this.#queue = next.catch(() => undefined);
    return next;
  }
}

// ── Small pure helpers ────────────────────────────────────────────────────────────────────────

function describeTarget(config: FtpTransportConfig, port: number): string {
  const scheme = config.secure === false ? 'ftp' : 'ftps';
  const folder = config.remoteDir === '.' ? '/' : config.remoteDir.startsWith('/') ? config.remoteDir : `/${config.remoteDir}`;
  const implicit = config.secure === 'implicit' ? ' (implicit TLS)' : '';
  return `${scheme}://${config.username}@${hostPort(config.host, port)}${folder}${implicit}`;
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * MKD for each missing level, like basic-ftp's ensureDir but without CWD: the client's working
 * folder stays the login folder. A refused MKD (it exists, or no right to create it above the
 * user's folder) is fine here; a folder that is really missing makes the STOR fail clearly.
 */
async function ensureFolder(client: Client, folder: string, knownDirs: Set<string>): Promise<void> {
  const levels: string[] = [];
  for (let dir = folder; dir !== '/' && dir !== '.' && !knownDirs.has(dir); dir = posix.dirname(dir)) {
    levels.unshift(dir);
  }
  for (const dir of levels) {
    await client.sendIgnoringError(`MKD ${dir}`);
    knownDirs.add(dir);
  }
}

/**
 * vsftpd (and others) answer LIST of a missing folder with an empty listing: an empty answer is
 * checked with CWD, then the client goes back to where it was. Without PWD there is no way back,
 * so no check (the client's paths would be relative to a folder it left).
 */
async function assertFolder(client: Client, dir: string): Promise<void> {
  const before = await client.pwd().catch(() => null);
  if (before === null) return;
  try {
    await client.cd(dir);
  } catch (error) {
    throw new Error(`no such folder (${errorMessage(error)})`, { cause: error });
  }
  await client.cd(before);
}

/** MFMT takes UTC `YYYYMMDDHHMMSS`; whole seconds are what every server accepts. */
function formatMfmtTime(time: Date): string {
  return time.toISOString().slice(0, 19).replace(/[-T:]/g, '');
}

function isFtpReply(error: unknown): error is FTPError {
  return error instanceof FTPError;
}

/** 500/502/504: the server does not know the command (as opposed to refusing it for this file). */
function isNotImplemented(code: number): boolean {
  return code === 500 || code === 502 || code === 504;
}

function networkReason(code: string): string {
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused (is the server running, and is this its FTP port?)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host name not found';
    case 'ETIMEDOUT':
      return 'timed out';
    default:
      return `network unreachable (${code})`;
  }
}

/** The uploader aborts with its own TIMEOUT or ABORTED error: pass that on as it is. */
function abortError(signal: AbortSignal, what: string): PushtaskError {
  const reason: unknown = signal.reason;
  if (reason instanceof PushtaskError) return reason;
  return new PushtaskError('ABORTED', `${what} was aborted`, { cause: reason });
}

/** A stream that ends, empty, after `ms`. */
function emptyAfter(ms: number): Readable {
  return new Readable({
    read() {
      setTimeout(() => this.push(null), ms);
    },
  });
}

/** SIZE of a remote file; null when the server says there is no such file. */
async function remoteSize(client: Client, target: string): Promise<number | null> {
  const reply = await client.sendIgnoringError(`SIZE ${target}`);
  if (reply.code === 550) return null;
  const size = /^213 (\d+)\s*$/.exec(reply.message)?.[1];
  if (size === undefined) {
    throw new PushtaskError('UPLOAD_FAILED', `Append mode needs SIZE, but the server answered "${reply.message}": use mode 'replace' for this server`);
  }
  return Number(size);
}

async function snapshotSize(localPath: string): Promise<number> {
  try {
    return (await fs.stat(localPath)).size;
  } catch (error) {
    throw new PushtaskError('UPLOAD_FAILED', `Cannot read the snapshot ${localPath}: ${errorMessage(error)}`, { cause: error });
  }
}

/** A polite QUIT (servers log abrupt disconnects as errors), never waiting long, never throwing. */
async function quitQuietly(client: Client): Promise<void> {
  if (client.closed) return;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.send('QUIT').catch(() => undefined),
      new Promise((resolve) => {
        timer = setTimeout(resolve, QUIT_TIMEOUT_MS);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    client.close();
  }
}
