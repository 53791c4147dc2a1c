/**
 * `sftp` over ssh2-sftp-client. Host keys are verified (sshHostKeys.ts); uploads are pipelined
 * (`fastPut`) into a temporary name and renamed over the target with `posix-rename@openssh.com`
 * when the server offers it. A client is never reused after an error or `end()`: every connect
 * makes a fresh one.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SftpClient from 'ssh2-sftp-client';
import type { ConnectConfig, FileEntry, SFTPWrapper, Stats } from 'ssh2';
import type { SftpTransportConfig } from '../config/schema.js';
import { shortenName } from '../shared/atomicCopy.js';
import { PushtaskError, errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { joinRemote, joinRemoteDir } from './remotePath.js';
import { verifyHostKey, type HostKeyPolicy } from './sshHostKeys.js';
import { forEachChunk } from '../shared/fileRange.js';
import type { AppendRequest, RemoteAppender, RemoteEntry, Transport, TransportContext, UploadRequest, UploadResult } from './types.js';

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
const KEEPALIVE_MS = 10_000;
/** Appends: write requests in flight at once, sent in order (so the server applies them in order). */
const APPEND_WRITES_IN_FLIGHT = 16;
/** SFTP status codes (draft-ietf-secsh-filexfer-02). */
const SFTP_EOF = 1;
const SFTP_NO_SUCH_FILE = 2;

export class SftpTransport implements Transport {
  readonly description: string;
  readonly #config: SftpTransportConfig;
  readonly #logger: Logger;
  readonly #hostKeyPolicy: HostKeyPolicy;
  #client: SftpClient | null = null;
  #posixRename = false;
  #warnedNonAtomic = false;
  readonly #knownDirs = new Set<string>();

  constructor(config: SftpTransportConfig, context: TransportContext) {
    this.#config = config;
    this.#logger = context.logger;
    this.description = `sftp://${config.username}@${config.host}:${config.port}/${config.remoteDir.replace(/^\/+/, '')}`;
    this.#hostKeyPolicy = hostKeyPolicyOf(config, context.stateDir);
  }

  async connect(signal: AbortSignal): Promise<void> {
    await this.close();
    const { host, port } = this.#config;
    // The library's default listeners print to the console; ours log, and forget a lost connection
    // so the next upload fails fast and the uploader reconnects instead of using a dead client.
    const lost = (what: string) => () => {
      this.#logger.debug(`SFTP connection to ${host}:${port}: ${what}`);
      if (this.#client === client) this.#client = null;
    };
    const client: SftpClient = new SftpClient('pushtask', {
      error: (error: unknown) => lost(`error: ${errorMessage(error)}`)(),
      end: lost('ended'),
      close: lost('closed'),
    });
    let refusal: string | undefined;
    const options: ConnectConfig = {
      host,
      port,
      username: this.#config.username,
      readyTimeout: 20_000,
      keepaliveInterval: KEEPALIVE_MS,
      keepaliveCountMax: 3,
      hostVerifier: (key: Buffer) => {
        const decision = verifyHostKey(this.#hostKeyPolicy, host, port, key);
        refusal = decision.reason;
        return decision.accepted;
      },
      ...this.#credentials(),
    };
    const onAbort = () => void client.end().catch(() => undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await client.connect(options);
    } catch (error) {
      void client.end().catch(() => undefined);
      throw this.#connectError(error, refusal);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    this.#client = client;
    this.#knownDirs.clear();
    this.#posixRename = Boolean(extensionsOf(sftpOf(client))['posix-rename@openssh.com']);
    if (!this.#posixRename) {
      this.#logger.warn(`${this.description} does not offer posix-rename@openssh.com: replacing a file there is remove + rename, which is not atomic`);
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
    return credentials;
  }

  #connectError(error: unknown, refusal: string | undefined): PushtaskError {
    const { host, port, username } = this.#config;
    const message = errorMessage(error);
    if (refusal) return new PushtaskError('HOST_KEY_REJECTED', `Refusing ${host}:${port}: ${refusal}`, { cause: error });
    if (error instanceof PushtaskError) return error;
    if (/authentication methods failed/i.test(message)) {
      return new PushtaskError('AUTH_FAILED', `SFTP login as ${username} on ${host}:${port} was refused: check the password, key or agent`, { cause: error });
    }
    return new PushtaskError('CONNECT_FAILED', `Cannot connect to SFTP server ${host}:${port}: ${message.replace(/^connect:\s*/, '')}`, { cause: error });
  }

  async upload(request: UploadRequest): Promise<UploadResult> {
    const client = this.#client;
    if (!client) throw new PushtaskError('UPLOAD_FAILED', `Not connected to ${this.description}`);
    const target = joinRemote(this.#config.remoteDir, request.remotePath);
    const dir = path.posix.dirname(target);
    const temp = `${dir}/.${shortenName(path.posix.basename(target))}.${randomBytes(4).toString('hex')}.pushtask-tmp`;
    const onAbort = () => void this.close();
    request.signal.addEventListener('abort', onAbort, { once: true });
    try {
      await this.#ensureDir(client, dir);
      const step = request.onProgress ? { step: request.onProgress } : {};
      await client.fastPut(request.localPath, temp, { concurrency: PUT_CONCURRENCY, chunkSize: PUT_CHUNK_BYTES, ...step });
      const seconds = request.mtime.getTime() / 1000;
      await callback<void>((done) => sftpOf(client).utimes(temp, seconds, seconds, done));
      await this.#replace(client, temp, target);
      const { size } = await fs.promises.stat(request.localPath);
      return { bytes: size };
    } catch (error) {
      if (this.#client === client) void client.delete(temp, true).catch(() => undefined);
      throw new PushtaskError('UPLOAD_FAILED', `SFTP upload to ${this.#config.host}:${target} failed: ${errorMessage(error)}`, { cause: error });
    } finally {
      request.signal.removeEventListener('abort', onAbort);
    }
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
  async #replace(client: SftpClient, temp: string, target: string): Promise<void> {
    if (this.#posixRename) {
      await client.posixRename(temp, target);
      return;
    }
    try {
      await client.rename(temp, target);
    } catch {
      if (!this.#warnedNonAtomic) {
        this.#logger.warn(`Replacing ${target} on ${this.#config.host} by remove + rename: for a moment the old file is gone (the server lacks posix-rename)`);
        this.#warnedNonAtomic = true;
      }
      await client.delete(target, true);
      await client.rename(temp, target);
    }
  }

  readonly append: RemoteAppender = {
    size: (remotePath, signal) =>
      this.#remoteOperation('reading the size of', remotePath, signal, async (sftp, target) => {
        try {
          const stats = await callback<{ size: number }>((done) => sftp.stat(target, done));
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
    write: (request) => this.#remoteOperation('appending to', request.remotePath, request.signal, (sftp, target) => appendTo(sftp, target, request)),
  };

  /** One append-mode operation on the open connection; a timeout or stop closes the connection. */
  async #remoteOperation<T>(what: string, remotePath: string, signal: AbortSignal, operation: (sftp: SFTPWrapper, target: string) => Promise<T>): Promise<T> {
    const client = this.#client;
    if (!client) throw new PushtaskError('UPLOAD_FAILED', `Not connected to ${this.description}`);
    const target = joinRemote(this.#config.remoteDir, remotePath);
    const onAbort = () => void this.close();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      signal.throwIfAborted();
      return await operation(sftpOf(client), target);
    } catch (error) {
      throw new PushtaskError('UPLOAD_FAILED', `SFTP ${what} ${this.#config.host}:${target} failed: ${errorMessage(error)}`, { cause: error });
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  async close(): Promise<void> {
    const client = this.#client;
    this.#client = null;
    if (!client) return;
    try {
      await Promise.race([client.end(), new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    } catch {
      // Already gone.
    }
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

  /** One call on the open connection; an abort (timeout) ends the connection so nothing hangs. */
  async #remoteCall<T>(signal: AbortSignal, what: string, call: (sftp: SFTPWrapper) => Promise<T>): Promise<T> {
    signal.throwIfAborted();
    const client = this.#client;
    if (!client) throw new PushtaskError('REMOTE_READ_FAILED', `Cannot ${what}: not connected to ${this.description}`);
    const onAbort = () => void this.close();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      return await call(sftpOf(client));
    } catch (error) {
      throw new PushtaskError('REMOTE_READ_FAILED', `Cannot ${what} on ${this.#config.host}:${this.#config.port}: ${errorMessage(error)}`, { cause: error });
    } finally {
      signal.removeEventListener('abort', onAbort);
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
async function appendTo(sftp: SFTPWrapper, target: string, request: AppendRequest): Promise<void> {
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
          () => void writes.delete(write),
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

function callback<T>(start: (done: (error?: Error | null, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => start((error, value) => (error ? reject(error) : resolve(value as T))));
}
