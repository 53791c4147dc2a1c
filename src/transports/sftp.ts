/**
 * `sftp` over ssh2-sftp-client. Host keys are verified (sshHostKeys.ts); uploads are pipelined
 * into a temporary name and renamed over the target with `posix-rename@openssh.com` when the
 * server offers it. A client is never reused after an error or `end()`: every connect makes a
 * fresh one.
 *
 * A small file (up to SMALL_FILE_BYTES) is read in one go (no thread-pool work for the local file).
 * OpenSSH: it goes into the *spare*, a temporary file opened after the previous upload, with its
 * WRITEs, FSETSTAT and CLOSE at once, then the rename: two round trips on an open connection.
 * Other servers (which may run requests concurrently): OPEN, the WRITEs, FSETSTAT + CLOSE, the
 * rename: four (sftpPipeline.ts). The rename always waits for all answers. Larger files go
 * through ssh2's `fastPut` (many requests in flight), then SETSTAT and the rename.
 */
import fs from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import SftpClient from 'ssh2-sftp-client';
import type { ConnectConfig, FileEntry, SFTPWrapper, Stats } from 'ssh2';
import type { SftpTransportConfig } from '../config/schema.js';
import { PushtaskError, errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { LINK_DEFAULTS, Lifeline, lostWhileConnecting, silentDropBound, type LinkSettings } from './lifeline.js';
import { joinRemote, joinRemoteDir } from './remotePath.js';
import { remoteTempName } from './tempNames.js';
import { verifyHostKey, type HostKeyPolicy } from './sshHostKeys.js';
import { StrayTemps } from './strayTemps.js';
import { meterWrites } from './sftpMeter.js';
import { AppendHandles, Spare, appendOnHandle, callback, corked, openFile, putSmallOnHandle, runsRequestsInOrder, spareName } from './sftpPipeline.js';
import type { BandwidthLimiter } from '../shared/bandwidth.js';
import { readySftpBeforeLimits, sftpLimitsKnown } from './sftpReadyEarly.js';
import { signKeyLoginsAtOnce } from './sshKeyLogin.js';
import { loginAheadOfServiceAccept } from './sshLoginAhead.js';
import { forEachChunk, readSmallFile } from '../shared/fileRange.js';
import type { AppendRequest, RemoteAppender, RemoteEntry, RemoteFolderProbe, Transport, TransportCapabilities, TransportContext, UploadRequest, UploadResult } from './types.js';
import { inOrderServers, isOutOfOrderRefusal, maxWriteOf, writeInOrder } from './sftpWriter.js';

/**
 * fastPut pipelining: requests in flight × bytes each (measured in bench/sftp.ts). ssh2 splits a
 * request into writes of at most 254 KiB for OpenSSH (255 KiB with `limits@openssh.com`) and of
 * 31,952 bytes for other servers that announce no limits, sent one after another. 8 × 31,952
 * bytes is one write for any OpenSSH (a quarter less CPU per GB than 32 KiB requests, and faster)
 * and exactly eight for the others, where 32 requests keep as many bytes per round trip in flight
 * as 64 × 32 KiB did.
 */
const PUT_CONCURRENCY = 32;
const PUT_CHUNK_BYTES = 8 * 31_952;
/** Appends: write requests in flight at once, sent in order (so the server applies them in order). */
const APPEND_WRITES_IN_FLIGHT = 16;
/** ssh2's own keepalive count (it counts only keepalive replies, see connect()): a late fallback. */
const SSH2_KEEPALIVE_COUNT_FALLBACK = 12;
/** SFTP status codes (draft-ietf-secsh-filexfer-02). */
const SFTP_EOF = 1;
const SFTP_NO_SUCH_FILE = 2;
/** Read whole and sent in one burst of WRITEs (at most 8 with any server, 1–4 with OpenSSH). */
const SMALL_FILE_BYTES = 256 * 1024;

export const SFTP_CAPABILITIES: TransportCapabilities = { append: true, list: true, read: true, maxLanes: 64 };

export class SftpTransport implements Transport {
  readonly description: string;
  readonly #config: SftpTransportConfig;
  readonly #logger: Logger;
  readonly #hostKeyPolicy: HostKeyPolicy;
  #client: SftpClient | null = null;
  /** The open connection's life: every operation on it fails at once when it dies. */
  #life: Lifeline | null = null;
  readonly #link: LinkSettings;
  readonly #agentTag: string | undefined;
  #posixRename = false;
  #warnedNonAtomic = false;
  readonly #knownDirs = new Set<string>();
  readonly #strays: StrayTemps;
  readonly #bandwidth: BandwidthLimiter | null;
  /** Aborted when this connection closes: ends its writes' waits for the bandwidth limit. */
  #connectionAbort = new AbortController();
  /** Round-trip savers (sftpPipeline.ts): the next temp file opened ahead, append handles, server order. */
  readonly #spare: Spare;
  readonly #spareDir: string;
  readonly #appendHandles = new AppendHandles();
  #inOrder = false;

  constructor(config: SftpTransportConfig, context: TransportContext) {
    this.#config = config;
    this.#logger = context.logger;
    this.description = `sftp://${config.username}@${config.host}:${config.port}/${config.remoteDir.replace(/^\/+/, '')}`;
    this.#hostKeyPolicy = hostKeyPolicyOf(config, context.stateDir);
    this.#strays = context.strays ?? new StrayTemps();
    this.#bandwidth = context.bandwidth ?? null;
    this.#spareDir = path.posix.dirname(joinRemote(config.remoteDir, 'spare'));
    this.#spare = new Spare(spareName(this.#spareDir, `${context.stateDir}|${config.username}@${config.host}:${config.port}|${config.remoteDir}`));
    this.#link = context.link ?? LINK_DEFAULTS;
    this.#agentTag = context.agentTag;
  }

  async connect(signal: AbortSignal): Promise<void> {
    await this.close();
    const { host, port } = this.#config;
    // The library's default listeners print to the console; ours end the connection's lifeline,
    // which fails every operation pending on it at once and lets the client go.
    // #life keeps pointing at a dead lifeline until close() or the next connect(): an upload on
    // a connection that died while idle then fails with CONNECTION_LOST (reconnect at once).
    const life = new Lifeline(this.description, () => {
      if (this.#client === client) {
        this.#client = null;
        this.#forgetHandles();
      }
      void client.end().catch(() => undefined);
    });
    const lost = (what: string) => (error?: unknown) => {
      if (!life.dead) this.#logger.debug(`SFTP connection to ${host}:${port}: ${what}`);
      life.end(what, error);
    };
    const client: SftpClient = new SftpClient('pushtask', {
      error: (error: unknown) => lost(`error: ${errorMessage(error)}`)(error),
      end: lost('ended by the server'),
      close: lost('closed'),
    });
    let refusal: string | undefined;
    const options: ConnectConfig = {
      host,
      port,
      username: this.#config.username,
      readyTimeout: 20_000,
      // ssh2 sends a keepalive every interval. It counts only keepalive replies as life, which
      // queue behind upload data on a slow link; the lifeline's silence watch (below) counts any
      // byte received, so ssh2's own count is only the fallback.
      keepaliveInterval: this.#link.keepaliveIntervalMs,
      keepaliveCountMax: Math.max(this.#link.keepaliveCountMax, SSH2_KEEPALIVE_COUNT_FALLBACK),
      // zlib@openssh.com starts after login, so a password or key is never compressed.
      ...(this.#config.compress ? { algorithms: { compress: ['zlib@openssh.com', 'zlib', 'none'] } } : {}),
      hostVerifier: (key: Buffer) => {
        const decision = verifyHostKey(this.#hostKeyPolicy, host, port, key);
        refusal = decision.reason;
        return decision.accepted;
      },
      ...this.#credentials(),
    };
    const ssh = (client as unknown as { client: { once(event: 'connect', listener: () => void): void; setNoDelay(on: boolean): void; _sock?: net.Socket; _protocol?: unknown } }).client;
    let handshake: net.Socket | undefined;
    let answered = () => undefined as void;
    const onData = () => answered();
    ssh.once('connect', () => {
      // Small requests wait for answers (OPEN, then WRITEs, FSETSTAT + CLOSE, rename): with Nagle's
      // algorithm on, the second of two back-to-back packets waits for the first one's ACK.
      ssh.setNoDelay(true);
      // Each saves a round trip per login on OpenSSH (see the modules).
      signKeyLoginsAtOnce(ssh._protocol);
      loginAheadOfServiceAccept(ssh);
      readySftpBeforeLimits(ssh);
      handshake = ssh._sock;
      handshake?.on('data', onData);
    });
    try {
      // readyTimeout bounds the whole handshake; a link that goes silent during it is noticed
      // sooner: any byte from the server restarts the stall clock.
      await life.run(
        signal,
        `connecting to ${host}:${port}`,
        (_signal, progress) => {
          answered = progress;
          return client.connect(options);
        },
        { stallMs: this.#link.stallTimeoutMs },
      );
    } catch (error) {
      void client.end().catch(() => undefined);
      throw this.#connectError(error, refusal);
    } finally {
      handshake?.off('data', onData);
    }
    if (life.dead) throw new PushtaskError('CONNECT_FAILED', `Cannot connect to SFTP server ${host}:${port}: the connection closed right after login`);
    this.#client = client;
    this.#life = life;
    this.#inOrder = runsRequestsInOrder(client);
    this.#connectionAbort = new AbortController();
    if (this.#bandwidth) meterWrites(sftpOf(client), this.#bandwidth, this.#connectionAbort.signal);
    sftpOf(client).on('close', () => lost('SFTP channel closed')());
    const socket = (client as unknown as { client?: { _sock?: net.Socket } }).client?._sock;
    if (socket) life.watchSilence(socket, silentDropBound(this.#link));
    // knownDirs is kept across connections: a folder found or made a minute ago is there now, and
    // checking again costs a round trip after every dead time. If it is gone, the upload fails with
    // "no such file", forgets the folder, and the retry makes it again.
    this.#posixRename = Boolean(extensionsOf(sftpOf(client))['posix-rename@openssh.com']);
    if (!this.#posixRename) {
      this.#logger.warn(`${this.description} does not offer posix-rename@openssh.com: replacing a file there is remove + rename, which is not atomic`);
    }
    const sftp = sftpOf(client);
    // Not awaited: the removals go out first on the channel, ahead of any upload (OpenSSH serves
    // a channel's requests in order), and the connection is usable a round trip sooner. A server
    // that reorders could remove an upload's reused temporary name under it: that upload's rename
    // then fails and it is retried; no partial file can land under a final name.
    void this.#strays.removeWith((temp) => callback<void>((done) => sftp.unlink(temp, (error) => done(error && !isNoSuchFile(error) ? error : null))), this.#logger, `${host}:${port}`);
  }

  /** Removes a failed upload's temporary file now, or over the next connection if this one is gone. */
  #removeTemp(client: SftpClient, temp: string): void {
    if (this.#client !== client || !this.#life || this.#life.dead) {
      this.#strays.note(temp);
      return;
    }
    try {
      sftpOf(client).unlink(temp, (error) => {
        if (error && !isNoSuchFile(error)) this.#strays.note(temp);
      });
    } catch {
      this.#strays.note(temp); // the channel is already closed
    }
  }

  #credentials(): Partial<ConnectConfig> {
    const { password, privateKey, passphrase, agent } = this.#config;
    const credentials: Partial<ConnectConfig> = {};
    if (password !== undefined) credentials.password = password;
    if (privateKey) {
      credentials.privateKey = privateKey.includes('-----BEGIN') ? privateKey : readKeyFile(privateKey);
      if (passphrase !== undefined) credentials.passphrase = passphrase;
    }
    if (agent) {
      const socket = agent === true ? process.env.SSH_AUTH_SOCK : agent;
      if (!socket) throw new PushtaskError('AUTH_FAILED', 'agent: true, but SSH_AUTH_SOCK is not set: start ssh-agent or give the socket path');
      credentials.agent = socket;
    }
    // ssh2 starts with the 'none' method, a round trip that only lists the server's methods:
    // going straight to ours saves it on every login (a reconnect on a slow link is round trips).
    const methods: Array<'password' | 'publickey' | 'agent'> = [];
    if (credentials.password !== undefined) methods.push('password');
    if (credentials.privateKey !== undefined) methods.push('publickey');
    if (credentials.agent !== undefined) methods.push('agent');
    if (methods.length) credentials.authHandler = methods;
    return credentials;
  }

  #connectError(error: unknown, refusal: string | undefined): PushtaskError {
    const { host, port, username } = this.#config;
    const message = errorMessage(error);
    if (refusal) return new PushtaskError('HOST_KEY_REJECTED', `Refusing ${host}:${port}: ${refusal}`, { cause: error });
    const lost = lostWhileConnecting(error, `Cannot connect to SFTP server ${host}:${port}`);
    if (lost) return lost;
    if (error instanceof PushtaskError) return error;
    if (/authentication methods failed/i.test(message)) {
      return new PushtaskError('AUTH_FAILED', `SFTP login as ${username} on ${host}:${port} was refused: check the password, key or agent`, { cause: error });
    }
    return new PushtaskError('CONNECT_FAILED', `Cannot connect to SFTP server ${host}:${port}: ${message.replace(/^connect:\s*/, '')}`, { cause: error });
  }

  async upload(request: UploadRequest): Promise<UploadResult> {
    const { client, life } = this.#connection('UPLOAD_FAILED');
    const target = joinRemote(this.#config.remoteDir, request.remotePath);
    const dir = path.posix.dirname(target);
    let temp = remoteTempName(target, this.#agentTag);
    const sftp = sftpOf(client);
    this.#appendHandles.release(sftp); // an append handle size() opened for a file now replaced whole
    let tempMayExist = false;
    let spareOpened = false;
    const what = `SFTP upload to ${this.#config.host}:${target}`;
    try {
      return await life.run(
        request.signal,
        what,
        async (_signal, progress) => {
          await this.#ensureDir(client, dir);
          const seconds = request.mtime.getTime() / 1000;
          const small = readSmallFile(request.localPath, SMALL_FILE_BYTES);
          let bytes: number;
          // A small file goes into the spare opened after the last upload, if there is one here.
          const spare = small && dir === this.#spareDir ? await this.#spare.take() : null;
          if (spare) temp = this.#spare.path;
          await request.onTemporaryName?.(temp);
          tempMayExist = true;
          progress();
          if (small) {
            await putSmallOnHandle(sftp, spare ?? (await openFile(sftp, temp, 'w')), small, temp, seconds, this.#inOrder);
            bytes = small.length;
          } else {
            bytes = await this.#putLarge(client, request, temp, seconds, progress);
          }
          progress();
          // Spares only on OpenSSH, where they complete the 2-round-trip path; elsewhere an extra
          // hidden file in the remote folder is not worth the one round trip it saves. The next
          // spare's OPEN leaves with the RENAME (one write): the server runs them in order, so
          // it opens a new file under the spare's name once this one has moved away.
          const uncork = corked(sftp);
          const replaced = this.#replace(sftp, temp, target);
          spareOpened = this.#inOrder && dir === this.#spareDir && this.#client === client && this.#spare.prepare(sftp);
          uncork();
          await replaced;
          return { bytes };
        },
        { stallMs: this.#link.stallTimeoutMs },
      );
    } catch (error) {
      if (isNoSuchFile(error as Error)) this.#knownDirs.delete(dir);
      // The rename failed after the next spare was opened: the removal of the temporary name
      // below may be that spare's name, so let it go too.
      if (spareOpened) this.#spare.release(sftp);
      if (tempMayExist) this.#removeTemp(client, temp);
      if (error instanceof PushtaskError && (error.code === 'CONNECTION_LOST' || error.code === 'TIMEOUT' || error.code === 'ABORTED')) throw error;
      throw new PushtaskError('UPLOAD_FAILED', `${what} failed: ${errorMessage(error)}`, { cause: error });
    }
  }

  /**
   * fastPut (writes out of order, fastest with OpenSSH), or in order (sftpWriter.ts) for servers
   * that refused that once; the first refusal switches this server over and retries at once.
   */
  async #putLarge(client: SftpClient, request: UploadRequest, temp: string, seconds: number, progress: () => void): Promise<number> {
    const sftp = sftpOf(client);
    const server = this.#server;
    const step = (sent: number) => {
      progress();
      request.onProgress?.(sent);
    };
    // Sized by the server's limits, which a fresh session may still be asking for (sftpReadyEarly.ts).
    await sftpLimitsKnown(sftp);
    if (!inOrderServers.has(this.#serverKey)) {
      try {
        await client.fastPut(request.localPath, temp, { concurrency: PUT_CONCURRENCY, chunkSize: PUT_CHUNK_BYTES, step });
        progress();
        await callback<void>((done) => sftp.utimes(temp, seconds, seconds, done));
        return (await fs.promises.stat(request.localPath)).size;
      } catch (error) {
        if (!isOutOfOrderRefusal(error)) throw error;
        if (inOrderServers.learn(this.#serverKey)) {
          this.#logger.warn(`The SFTP server ${server} accepts writes only in order (${errorMessage(error)}); writing to it in order from now on`);
        }
      }
    }
    return putInOrder(sftp, { ...request, onProgress: step }, temp, seconds);
  }

  /** The open connection, or a clear error naming why there is none. */
  #connection(code: 'UPLOAD_FAILED' | 'REMOTE_READ_FAILED', what?: string): { client: SftpClient; life: Lifeline } {
    const client = this.#client;
    const life = this.#life;
    if (!client || !life || life.dead) {
      const why = life?.dead ? (life.signal.reason as Error).message : 'connect() first';
      const message = what ? `Cannot ${what}: not connected to ${this.description} (${why})` : `Not connected to ${this.description} (${why})`;
      throw new PushtaskError(life?.dead ? 'CONNECTION_LOST' : code, message);
    }
    return { client, life };
  }

  async #ensureDir(client: SftpClient, dir: string): Promise<void> {
    if (dir === '.' || dir === '/' || this.#knownDirs.has(dir)) return;
    if (!(await client.exists(dir))) {
      try {
        await client.mkdir(dir, true);
      } catch (error) {
        // Another connection may have created it meanwhile (parallel uploads into a new folder).
        if (!(await client.exists(dir))) throw error;
      }
    }
    this.#knownDirs.add(dir);
  }

  /** Rename over the target: atomic with posix-rename; SFTP v3 rename refuses an existing target. */
  async #replace(sftp: SFTPWrapper, temp: string, target: string): Promise<void> {
    if (this.#posixRename) {
      await callback<void>((done) => sftp.ext_openssh_rename(temp, target, done));
      return;
    }
    try {
      await callback<void>((done) => sftp.rename(temp, target, done));
    } catch {
      if (!this.#warnedNonAtomic) {
        this.#logger.warn(`Replacing ${target} on ${this.#config.host} by remove + rename: for a moment the old file is gone (the server lacks posix-rename)`);
        this.#warnedNonAtomic = true;
      }
      await callback<void>((done) => sftp.unlink(target, (error) => done(error && !isNoSuchFile(error) ? error : null)));
      await callback<void>((done) => sftp.rename(temp, target, done));
    }
  }

  /**
   * Appending opens the remote file for writing in place. A server that takes writes only in order
   * (sftpWriter.ts) cannot do that — rclone's truncates the file at the open and then refuses the
   * write — so for those there is no append: the uploader sends whole files.
   */
  get append(): RemoteAppender | undefined {
    return inOrderServers.has(this.#serverKey) ? undefined : this.#appender;
  }

  get #server(): string {
    return `${this.#config.host}:${this.#config.port}`;
  }

  /** What the in-order registry remembers: host:port, and the pinned host key where there is one (another server may later listen there). */
  get #serverKey(): string {
    return `${this.#server} ${this.#config.hostKey ?? ''}`;
  }

  readonly #appender: RemoteAppender = {
    size: (remotePath, signal) =>
      this.#remoteOperation('reading the size of', remotePath, signal, async (sftp, target) => {
        try {
          // In-order servers: the OPEN for the write that usually follows goes out with the STAT.
          const stats = this.#inOrder ? await this.#appendHandles.sizeAndOpen(sftp, target) : await callback<{ size: number }>((done) => sftp.stat(target, done));
          return stats.size;
        } catch (error) {
          if ((error as { code?: unknown }).code === SFTP_NO_SUCH_FILE) return null;
          throw error;
        }
      }),
    read: (remotePath, start, length, signal) =>
      this.#remoteOperation('reading', remotePath, signal, async (sftp, target) => {
        const handle = await callback<Buffer>((done) => sftp.open(target, 'r', done));
        try {
          const buffer = Buffer.alloc(length);
          let filled = 0;
          while (filled < length) {
            const bytesRead = await callback<number>((done) => sftp.read(handle, buffer, filled, length - filled, start + filled, done)).catch(
              (error: unknown) => {
                if ((error as { code?: unknown }).code === SFTP_EOF) return 0;
                throw error;
              },
            );
            if (bytesRead === 0) break;
            filled += bytesRead;
          }
          return buffer.subarray(0, filled);
        } finally {
          await callback<void>((done) => sftp.close(handle, done)).catch(() => undefined);
        }
      }),
    write: (request) =>
      this.#remoteOperation('appending to', request.remotePath, request.signal, async (sftp, target, progress) => {
        try {
          const handle = await this.#appendHandles.take(sftp, target);
          const small = handle ? readSmallFile(request.localPath, SMALL_FILE_BYTES, request.localStart) : null;
          if (handle && small) return await appendOnHandle(sftp, handle, small, request.remoteSize, request.mtime.getTime() / 1000);
          if (handle) void callback<void>((done) => sftp.close(handle, done)).catch(() => undefined);
          return await appendTo(sftp, target, request, progress);
        } catch (error) {
          if (isOutOfOrderRefusal(error) && inOrderServers.learn(this.#serverKey)) {
            this.#logger.warn(`The SFTP server ${this.#server} accepts writes only in order and cannot append (${errorMessage(error)}); sending whole files to it from now on`);
          }
          throw error;
        }
      }),
  };

  /** One append-mode operation on the open connection; a timeout or stop closes the connection. */
  async #remoteOperation<T>(what: string, remotePath: string, signal: AbortSignal, operation: (sftp: SFTPWrapper, target: string, progress: () => void) => Promise<T>): Promise<T> {
    const { client, life } = this.#connection('UPLOAD_FAILED');
    const target = joinRemote(this.#config.remoteDir, remotePath);
    const where = `SFTP ${what} ${this.#config.host}:${target}`;
    try {
      return await life.run(signal, where, (_signal, progress) => operation(sftpOf(client), target, progress), { stallMs: this.#link.stallTimeoutMs });
    } catch (error) {
      if (error instanceof PushtaskError && (error.code === 'CONNECTION_LOST' || error.code === 'TIMEOUT' || error.code === 'ABORTED')) throw error;
      throw new PushtaskError('UPLOAD_FAILED', `${where} failed: ${errorMessage(error)}`, { cause: error });
    }
  }

  async close(): Promise<void> {
    const client = this.#client;
    const life = this.#life;
    this.#client = null;
    this.#life = null;
    if (!client) {
      life?.end('closed by pushtask');
      return;
    }
    this.#connectionAbort.abort(new PushtaskError('UPLOAD_FAILED', `The connection to ${this.description} was closed`));
    const sftp = sftpOf(client);
    // The spare goes before the lifeline ends: ending it ends the client, and the spare would stay.
    const goodbye = async () => {
      this.#appendHandles.release(sftp);
      if (life && !life.dead) await this.#spare.discard(sftp).catch(() => undefined);
      else if (this.#spare.forget()) this.#strays.note(this.#spare.path);
      life?.end('closed by pushtask');
      await client.end();
    };
    try {
      await Promise.race([goodbye(), new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    } catch {
      // Already gone.
    } finally {
      life?.end('closed by pushtask');
    }
  }

  /** The connection is gone with its handles; the spare file stays until a later connection removes it. */
  #forgetHandles(): void {
    this.#appendHandles.forget();
    if (this.#spare.forget()) this.#strays.note(this.#spare.path);
  }

  async list(remoteDir: string, signal: AbortSignal): Promise<RemoteEntry[]> {
    const dir = joinRemoteDir(this.#config.remoteDir, remoteDir);
    return this.#remoteCall(signal, `list ${dir}`, async (sftp) => {
      const entries = await callback<FileEntry[]>((done) => sftp.readdir(dir, done));
      return entries
        .filter((entry) => entry.filename !== '.' && entry.filename !== '..')
        .map((entry) => ({
          name: entry.filename,
          kind: kindOfMode(entry.attrs.mode),
          size: entry.attrs.size ?? 0,
          mtime: new Date((entry.attrs.mtime ?? 0) * 1000),
        }));
    });
  }

  async read(remotePath: string, maxBytes: number, signal: AbortSignal): Promise<Buffer> {
    const file = joinRemote(this.#config.remoteDir, remotePath);
    return this.#remoteCall(signal, `read ${file}`, async (sftp) => {
      const stats = await callback<Stats>((done) => sftp.stat(file, done));
      if (stats.size > maxBytes) throw new Error(`it holds ${stats.size} bytes, more than the ${maxBytes} expected`);
      return callback<Buffer>((done) => sftp.readFile(file, done));
    });
  }

  /**
   * Stats the remote folder, or its nearest existing parent when the first upload will create it;
   * SFTP cannot ask "may I write" without writing, so the mode bits answer: a folder nobody may
   * write to is refused, any other is taken as writable (the server's own user mapping decides).
   */
  async probe(signal: AbortSignal): Promise<RemoteFolderProbe> {
    const target = joinRemoteDir(this.#config.remoteDir, '');
    return this.#remoteCall(signal, `look at ${target}`, async (sftp) => {
      const statOf = (dir: string) =>
        callback<Stats>((done) => sftp.stat(dir, done)).catch((error: { code?: unknown }) => {
          if (error.code === 2 || error.code === 'ENOENT') return null; // SSH_FX_NO_SUCH_FILE
          throw error;
        });
      let dir = target;
      let stats = await statOf(dir);
      const missing = stats === null;
      while (stats === null && path.posix.dirname(dir) !== dir) {
        dir = path.posix.dirname(dir);
        stats = await statOf(dir);
      }
      if (!stats) return { folder: 'missing', writable: null, detail: `no parent folder of ${target} could be found` };
      const mode = stats.mode & 0o777;
      const writable = (mode & 0o222) !== 0;
      const entries = missing ? undefined : (await callback<FileEntry[]>((done) => sftp.readdir(target, done))).filter((e) => e.filename !== '.' && e.filename !== '..').length;
      const which = missing ? `the nearest existing folder, ${dir},` : dir;
      const detail = `${which} has mode ${mode.toString(8).padStart(3, '0')} (owner uid ${stats.uid})${writable ? '' : ': nobody may write there'}`;
      return { folder: missing ? 'missing' : 'exists', ...(entries === undefined ? {} : { entries }), writable, detail };
    });
  }

  /** One call on the open connection; an abort (timeout) ends the connection so nothing hangs. */
  async #remoteCall<T>(signal: AbortSignal, what: string, call: (sftp: SFTPWrapper) => Promise<T>): Promise<T> {
    signal.throwIfAborted();
    const { client, life } = this.#connection('REMOTE_READ_FAILED', what);
    try {
      return await life.run(signal, what, () => call(sftpOf(client)), { stallMs: this.#link.stallTimeoutMs });
    } catch (error) {
      if (error instanceof PushtaskError && (error.code === 'CONNECTION_LOST' || error.code === 'TIMEOUT' || error.code === 'ABORTED')) throw error;
      throw new PushtaskError('REMOTE_READ_FAILED', `Cannot ${what} on ${this.#config.host}:${this.#config.port}: ${errorMessage(error)}`, { cause: error });
    }
  }
}

function kindOfMode(mode: number | undefined): RemoteEntry['kind'] {
  const type = (mode ?? 0) & 0o170000;
  return type === 0o100000 ? 'file' : type === 0o040000 ? 'dir' : 'other';
}

function hostKeyPolicyOf(config: SftpTransportConfig, stateDir: string): HostKeyPolicy {
  if (config.hostKey === 'accept-new') return { kind: 'accept-new', file: path.join(stateDir, 'known_hosts') };
  if (config.hostKey) return { kind: 'pin', fingerprint: config.hostKey.startsWith('SHA256:') ? config.hostKey : `SHA256:${config.hostKey}` };
  return { kind: 'known-hosts', file: config.knownHosts ?? path.join(os.homedir(), '.ssh', 'known_hosts') };
}

function readKeyFile(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (error) {
    throw new PushtaskError('AUTH_FAILED', `Cannot read the private key file ${file}: ${errorMessage(error)}`, { cause: error });
  }
}

/**
 * Writes the snapshot's bytes from `localStart` at the remote file's end, pipelined but in order,
 * then sets the mtime on the open handle. The close waits for the server, so the caller's size
 * check that follows sees every byte.
 */
async function appendTo(sftp: SFTPWrapper, target: string, request: AppendRequest, progress: () => void): Promise<void> {
  const handle = await callback<Buffer>((done) => sftp.open(target, 'r+', done));
  try {
    const piece = (sftp as unknown as { _maxWriteLen?: number })._maxWriteLen ?? 32 * 1024;
    const shift = request.remoteSize - request.localStart;
    const writes = new Set<Promise<void>>();
    let failure: unknown = null;
    await forEachChunk(request.localPath, request.localStart, async (chunk, offset) => {
      for (let at = 0; at < chunk.length; at += piece) {
        if (failure) throw failure;
        request.signal.throwIfAborted();
        const part = chunk.subarray(at, at + piece);
        const write: Promise<void> = callback<void>((done) => sftp.write(handle, part, 0, part.length, shift + offset + at, done)).then(
          () => {
            progress();
            writes.delete(write);
          },
          (error: unknown) => {
            failure ??= error;
            writes.delete(write);
          },
        );
        writes.add(write);
        if (writes.size >= APPEND_WRITES_IN_FLIGHT) await Promise.race(writes);
      }
    });
    await Promise.all(writes);
    if (failure) throw failure;
    const seconds = request.mtime.getTime() / 1000;
    await callback<void>((done) => sftp.futimes(handle, seconds, seconds, done));
  } finally {
    await callback<void>((done) => sftp.close(handle, done)).catch(() => undefined);
  }
}

function sftpOf(client: SftpClient): SFTPWrapper {
  return (client as unknown as { sftp: SFTPWrapper }).sftp;
}

/** The extensions the server announced in its SFTP version packet (ssh2 keeps them privately). */
function extensionsOf(sftp: SFTPWrapper): Record<string, string> {
  return (sftp as unknown as { _extensions?: Record<string, string> })._extensions ?? {};
}


/** OPEN (truncating); writes in order, PUT_CONCURRENCY × the largest write in flight; FSETSTAT and CLOSE. */
async function putInOrder(sftp: SFTPWrapper, request: UploadRequest, temp: string, seconds: number): Promise<number> {
  const handle = await callback<Buffer>((done) => sftp.open(temp, 'w', done));
  let bytes: number;
  try {
    // As many bytes in flight as fastPut keeps (PUT_CONCURRENCY × PUT_CHUNK_BYTES), in writes the server takes whole.
    const inFlight = Math.max(PUT_CONCURRENCY, Math.ceil((PUT_CONCURRENCY * PUT_CHUNK_BYTES) / maxWriteOf(sftp)));
    bytes = await writeInOrder(sftp, handle, { localPath: request.localPath, inFlight, signal: request.signal, ...(request.onProgress ? { onProgress: request.onProgress } : {}) });
  } catch (error) {
    await callback<void>((done) => sftp.close(handle, done)).catch(() => undefined);
    throw error;
  }
  const [timed, closed] = await Promise.allSettled([
    callback<void>((done) => sftp.futimes(handle, seconds, seconds, done)),
    callback<void>((done) => sftp.close(handle, done)),
  ]);
  if (closed.status === 'rejected') throw closed.reason;
  if (timed.status === 'rejected') await callback<void>((done) => sftp.utimes(temp, seconds, seconds, done));
  return bytes;
}

function isNoSuchFile(error: Error): boolean {
  return (error as { code?: unknown }).code === 2; // SSH_FX_NO_SUCH_FILE
}
