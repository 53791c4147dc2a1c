/**
 * An in-process FTP/FTPS server for tests: ftp-srv on 127.0.0.1, backed by a temp folder, one
 * user. Options turn on the behaviours of other real servers that the transport must cope with
 * (IIS refusing a rename onto an existing file, pure-ftpd logging a cut upload as a success, a
 * slow link).
 *
 * Additions to ftp-srv 4.6: an MFMT command (it has none), answered as ProFTPD and FileZilla
 * Server do; a SIZE that answers "213 0" for an empty file (ftp-srv answers "213 File status");
 * a RETR that survives its data connection closing before the transfer starts.
 */
import type { EventEmitter } from 'node:events';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FileSystem, FtpSrv, type FtpConnection } from 'ftp-srv';
import { freePort } from './daemon.js';
import { testCertificates } from './tls.js';

export interface FtpServerOptions {
  /** @default 'explicit' (AUTH TLS offered, plain logins still accepted) */
  tls?: 'explicit' | 'implicit' | false;
  /** Listen on this port (to restart a stopped server where clients expect it). @default a free port */
  port?: number;
  /** Serve this folder. @default a new temp folder, removed by close() */
  root?: string;
  /** @default 'alice' */
  user?: string;
  /** @default 'wonderland' */
  password?: string;
  /** Answer RNTO onto an existing file with 550, as IIS and FileZilla Server do. */
  refuseRenameOntoExisting?: boolean;
  /** Store this many bytes fewer than received and still answer 226, as pure-ftpd does after a cut data connection. */
  dropLastBytes?: number;
  /** Wait this long before storing each received chunk: a slow upload. */
  chunkDelayMs?: number;
  /** Wait this long before opening a file for RETR: a slow disk. */
  readDelayMs?: number;
}

export interface TestFtpServer {
  host: '127.0.0.1';
  port: number;
  root: string;
  user: string;
  password: string;
  /** Commands received, in order (PASS arguments hidden), for assertions on the protocol used. */
  commands: string[];
  close(): Promise<void>;
}

interface CommandDispatcher {
  handle(command: string | { raw: string }): Promise<unknown>;
}

export async function startFtpServer(options: FtpServerOptions = {}): Promise<TestFtpServer> {
  patchCommands();
  const mode = options.tls ?? 'explicit';
  const user = options.user ?? 'alice';
  const password = options.password ?? 'wonderland';
  const root = options.root ?? fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-ftp-root-'));
  const port = options.port ?? (await freePort());
  const certificates = mode ? await testCertificates() : null;
  const pasvMin = 20_000 + Math.floor(Math.random() * 40_000);

  const signalListeners = listenersOfStopSignals();
  const server = new FtpSrv({
    url: `${mode === 'implicit' ? 'ftps' : 'ftp'}://127.0.0.1:${port}`,
    pasv_url: '127.0.0.1',
    pasv_min: pasvMin,
    pasv_max: pasvMin + 500,
    tls: certificates ? { key: certificates.key, cert: certificates.cert } : false,
    anonymous: false,
    log: silentLog,
  });
  // ftp-srv exits the whole process on SIGINT/SIGTERM: not in a test runner.
  removeListenersAddedSince(signalListeners);

  const commands: string[] = [];
  // ftp-srv's types omit the 'connect' event and the per-connection command dispatcher.
  (server as unknown as EventEmitter).on('connect', ({ connection }: { connection: { commands: CommandDispatcher } }) => {
    const dispatcher = connection.commands;
    const original = dispatcher.handle.bind(dispatcher);
    dispatcher.handle = (command) => {
      const raw = typeof command === 'string' ? command : command.raw;
      commands.push(raw.startsWith('PASS ') ? 'PASS ***' : raw);
      return original(command);
    };
  });
  server.on('login', ({ connection, username, password: given }, resolve, reject) => {
    if (username !== user || given !== password) {
      reject(new Error('Login incorrect.'));
      return;
    }
    resolve({ fs: new TestFileSystem(connection, root, options) });
  });
  await server.listen();
  return {
    host: '127.0.0.1',
    port,
    root,
    user,
    password,
    commands,
    close: async () => {
      await server.close();
      if (!options.root) fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Writes through a plain Writable so the delay and truncation options can act on the bytes. */
class TestFileSystem extends FileSystem {
  readonly #options: FtpServerOptions;

  constructor(connection: FtpConnection, root: string, options: FtpServerOptions) {
    super(connection, { root, cwd: '/' });
    this.#options = options;
  }

  fsPath(clientPath: string): string {
    return (this as unknown as { _resolvePath(p: string): { fsPath: string } })._resolvePath(clientPath).fsPath;
  }

  override write(fileName: string, writeOptions: { append?: boolean; start?: unknown } = {}): unknown {
    const { chunkDelayMs = 0, dropLastBytes = 0 } = this.#options;
    if (!chunkDelayMs && !dropLastBytes) return super.write(fileName, writeOptions);
    const target = this.fsPath(fileName);
    return { stream: new ServerFileWriter(target, chunkDelayMs, dropLastBytes, Boolean(writeOptions.append)), clientPath: fileName };
  }

  override async read(fileName: string, readOptions: { start?: unknown } = {}): Promise<unknown> {
    const { readDelayMs = 0 } = this.#options;
    if (readDelayMs) await new Promise((resolve) => setTimeout(resolve, readDelayMs));
    return super.read(fileName, readOptions);
  }

  override async rename(from: string, to: string): Promise<unknown> {
    if (this.#options.refuseRenameOntoExisting && fs.existsSync(this.fsPath(to))) {
      throw new Error('Cannot create a file when that file already exists.');
    }
    return super.rename(from, to);
  }

  setModifiedTime(clientPath: string, time: Date): void {
    fs.utimesSync(this.fsPath(clientPath), time, time);
  }
}

class ServerFileWriter extends Writable {
  readonly path: string;
  readonly #file: fs.WriteStream;
  readonly #delayMs: number;
  readonly #dropLastBytes: number;

  constructor(target: string, delayMs: number, dropLastBytes: number, append: boolean) {
    super({ highWaterMark: 16 * 1024 });
    this.path = target;
    this.#file = fs.createWriteStream(target, { flags: append ? 'a' : 'w' });
    this.#delayMs = delayMs;
    this.#dropLastBytes = dropLastBytes;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    setTimeout(() => this.#file.write(chunk, (error) => done(error)), this.#delayMs);
  }

  override _final(done: (error?: Error | null) => void): void {
    this.#file.end(() => {
      if (this.#dropLastBytes) {
        const size = fs.statSync(this.path).size;
        fs.truncateSync(this.path, Math.max(0, size - this.#dropLastBytes));
      }
      done();
    });
  }
}

let commandsPatched = false;

/** ftp-srv dispatches through one shared registry of command handlers. */
function patchCommands(): void {
  if (commandsPatched) return;
  commandsPatched = true;
  const require = createRequire(import.meta.url);
  const registry = require('ftp-srv/src/commands/registry.js') as Record<string, unknown>;
  registry.MFMT = mfmtCommand;
  registry.SIZE = sizeCommand;
  registry.RETR = retrCommand;
  patchPassiveAddressCheck(createRequire(require.resolve('ftp-srv/src/connector/passive.js')));
}

/**
 * ftp-srv 4.6 compares the addresses of the control and the passive data connection with
 * `ip.isEqual(control.remoteAddress, data.remoteAddress)`, which throws "Invalid ip address:
 * undefined" — uncaught, in the test process — when either socket is already dead: a data
 * connection the client reset before the server accepted it (a client giving up on a slow server,
 * easily seen on a loaded machine), or a control connection closed meanwhile. Such a connection
 * is treated as what it is, one from nobody alive: ftp-srv then destroys it (and ends the control
 * connection), as for an address that does not match.
 */
function patchPassiveAddressCheck(ftpSrvRequire: NodeJS.Require): void {
  const ip = ftpSrvRequire('ip') as { isEqual(a: string | undefined, b: string | undefined): boolean };
  const isEqual = ip.isEqual.bind(ip);
  ip.isEqual = (a, b) => a !== undefined && b !== undefined && isEqual(a, b);
}

interface CommandContext {
  fs: TestFileSystem;
  reply(code: number, message?: string): Promise<unknown>;
}

/** SIZE as RFC 3659 has it: "213 <bytes>", also for 0 bytes. */
const sizeCommand = {
  directive: 'SIZE',
  flags: { feat: 'SIZE' },
  syntax: '{{cmd}} <path>',
  description: 'Return the size of a file',
  async handler(this: CommandContext, { command }: { command: { arg: string | null } }) {
    try {
      const stat = (await this.fs.get(command.arg ?? '')) as fs.Stats;
      return this.reply(213, String(stat.size));
    } catch (error) {
      return this.reply(550, (error as Error).message);
    }
  },
};

interface RetrContext extends CommandContext {
  restByteCount: number;
  connector: { socket: (NodeJS.WritableStream & { resume(): void }) | null; waitForConnection(): Promise<unknown>; end(): void };
  commandSocket: { pause(): void; resume(): void };
}

/**
 * RETR as ftp-srv 4.6 does it, except when the data connection is already closed once the file is
 * open (a client that gave up, a server being stopped): ftp-srv then dereferences the closed
 * socket inside a promise nobody awaits yet, an unhandled rejection in the test process. Here the
 * client gets 426 instead, and any failure mid-transfer a 551.
 */
const retrCommand = {
  directive: 'RETR',
  syntax: '{{cmd}} <path>',
  description: 'Retrieve a copy of the file',
  async handler(this: RetrContext, { command }: { command: { arg: string | null } }) {
    let stream: NodeJS.ReadableStream | null = null;
    try {
      await this.connector.waitForConnection();
      this.commandSocket.pause();
      const opened = (await this.fs.read(command.arg ?? '', { start: this.restByteCount })) as NodeJS.ReadableStream | { stream: NodeJS.ReadableStream };
      stream = 'stream' in opened ? opened.stream : opened;
      this.restByteCount = 0;
      const socket = this.connector.socket;
      if (!socket) return await this.reply(426, 'Data connection closed');
      await this.reply(150);
      socket.resume();
      await pipeline(stream, socket);
      return await this.reply(226, command.arg ?? '');
    } catch (error) {
      return this.reply(551, (error as Error).message).catch(() => undefined);
    } finally {
      // The file's descriptor, whatever happened (pipeline has closed it already when it ran).
      (stream as unknown as { destroy(): void } | null)?.destroy();
      this.connector.end();
      this.commandSocket.resume();
    }
  },
};

/** `MFMT YYYYMMDDHHMMSS[.sss] path` (draft-somers-ftp-mfxx), listed in FEAT like ftp-srv's own commands. */
const mfmtCommand = {
  directive: 'MFMT',
  flags: { feat: 'MFMT' },
  syntax: '{{cmd}} <time> <path>',
  description: 'Set the modification time of a file',
  handler(this: CommandContext, { command }: { command: { arg: string | null } }) {
    const match = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,3}))? (.+)$/.exec(command.arg ?? '');
    if (!match) return this.reply(501, 'Syntax: MFMT YYYYMMDDHHMMSS path');
    const [, year, month, day, hour, minute, second, millis = '0', file] = match;
    const time = new Date(Date.UTC(+year!, +month! - 1, +day!, +hour!, +minute!, +second!, +millis.padEnd(3, '0')));
    try {
      this.fs.setModifiedTime(file!, time);
    } catch (error) {
      return this.reply(550, (error as Error).message);
    }
    return this.reply(213, `Modify=${command.arg!.split(' ')[0]}; ${file}`);
  },
};

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGQUIT'] as const;

function listenersOfStopSignals(): Map<string, Function[]> {
  return new Map(STOP_SIGNALS.map((signal) => [signal, process.listeners(signal)]));
}

function removeListenersAddedSince(before: Map<string, Function[]>): void {
  for (const signal of STOP_SIGNALS) {
    const old = before.get(signal) ?? [];
    for (const listener of process.listeners(signal)) {
      if (!old.includes(listener)) process.off(signal, listener as (...args: unknown[]) => void);
    }
  }
}

const silentLog = {
  child: () => silentLog,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  fatal: () => undefined,
};
