/**
 * A small, real SFTP server (protocol v3) on ssh2's `Server`, confined to one local folder. It backs
 * `pushtask demo` (the whole upload path runs over a real protocol with zero set-up) and the tests.
 *
 * Every client path is mapped inside `root`; `..` above the root and symlinks that resolve outside
 * it are refused with PERMISSION_DENIED. The client's home is `/` = root. Not a general-purpose
 * server: no shell/exec, no SYMLINK/READLINK, uid/gid in SETSTAT are ignored, and the symlink check
 * happens before the file operation (a racing local process could swap a link in between).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { constants as fsConstants, type Stats } from 'node:fs';
import fs, { type FileHandle } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import ssh2 from 'ssh2';
import type { Attributes, AuthContext, Connection, FileEntry, ParsedKey, SFTPWrapper } from 'ssh2';

const { Server, utils } = ssh2;
const { OPEN_MODE, STATUS_CODE } = utils.sftp;

export interface EmbeddedSftpServerOptions {
  /** Folder served as `/`; created when missing. */
  root: string;
  username: string;
  password?: string;
  /** Public key text (OpenSSH one-line format) accepted for publickey auth. */
  authorizedKey?: string;
  /** PEM/OpenSSH private key. @default a fresh ed25519 key */
  hostKey?: string | Buffer;
  /** @default 0 (ephemeral) */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** Advertise and serve `posix-rename@openssh.com` (atomic overwrite). @default true */
  supportPosixRename?: boolean;
}

export interface EmbeddedSftpServer {
  host: string;
  port: number;
  /** `SHA256:<base64 without padding>` of the host public key blob, as `ssh-keygen -lf` prints it. */
  hostKeyFingerprint: string;
  /** OpenSSH one-line public key (`ssh-ed25519 AAAA…`), for known_hosts. */
  hostPublicKey: string;
  /** TCP connections currently open. */
  readonly connections: number;
  /** Ends every connection and stops listening; idempotent (returns the same promise). */
  close(): Promise<void>;
  /** Test hook: cuts every TCP connection at once, as a network failure would. */
  dropAllConnections(): void;
}

const READ_MAX_BYTES = 256 * 1024;
const READDIR_BATCH = 100;
const CLOSE_GRACE_MS = 1000;
const MAX_SYMLINK_HOPS = 40;

class SftpStatusError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const denied = (clientPath: string) => new SftpStatusError(STATUS_CODE.PERMISSION_DENIED, `outside the served folder: ${clientPath}`);

// ---------------------------------------------------------------------------------------------
// Path confinement

/**
 * Maps a client path (absolute or relative to `/`) to a host path inside `root` (a real path).
 * `followLast: false` checks only the parent's real location, for operations on a link itself.
 */
async function confine(root: string, clientPath: string, followLast: boolean): Promise<string> {
  const parts: string[] = [];
  for (const part of clientPath.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.pop() === undefined) throw denied(clientPath);
    } else {
      parts.push(part);
    }
  }
  const hostPath = path.join(root, ...parts);
  const real = followLast || parts.length === 0
    ? await realLocation(hostPath)
    : path.join(await realLocation(path.dirname(hostPath)), path.basename(hostPath));
  if (!isInside(root, real)) throw denied(clientPath);
  return hostPath;
}

function isInside(root: string, real: string): boolean {
  return real === root || real.startsWith(root + path.sep);
}

/** Where `p` really is (or would be created), following symlinks, dangling ones included. */
async function realLocation(p: string, hops = 0): Promise<string> {
  try {
    return await fs.realpath(p);
  } catch (error) {
    if (errnoOf(error) !== 'ENOENT' && errnoOf(error) !== 'ENOTDIR') throw error;
  }
  if (hops > MAX_SYMLINK_HOPS) throw new SftpStatusError(STATUS_CODE.FAILURE, 'too many symbolic links');
  const link = await fs.readlink(p).catch(() => null);
  if (link !== null) return realLocation(path.resolve(path.dirname(p), link), hops + 1);
  const parent = path.dirname(p);
  if (parent === p) return p;
  return path.join(await realLocation(parent, hops), path.basename(p));
}

function toClientPath(root: string, real: string): string {
  return '/' + path.relative(root, real).split(path.sep).filter(Boolean).join('/');
}

// ---------------------------------------------------------------------------------------------
// Handle table

type OpenHandle =
  | { kind: 'file'; file: FileHandle; append: boolean }
  | { kind: 'dir'; hostPath: string; pending: string[] | null };

class HandleTable {
  readonly #handles = new Map<number, OpenHandle>();
  #next = 0;
  #closed = false;

  add(entry: OpenHandle): Buffer | null {
    if (this.#closed) {
      if (entry.kind === 'file') void entry.file.close().catch(() => undefined);
      return null;
    }
    const id = this.#next++ >>> 0;
    this.#handles.set(id, entry);
    const handle = Buffer.alloc(4);
    handle.writeUInt32BE(id);
    return handle;
  }

  get<K extends OpenHandle['kind']>(handle: Buffer, kind: K): Extract<OpenHandle, { kind: K }> {
    const entry = this.#handles.get(this.#id(handle));
    if (entry?.kind !== kind) throw new SftpStatusError(STATUS_CODE.FAILURE, 'invalid handle');
    return entry as Extract<OpenHandle, { kind: K }>;
  }

  async remove(handle: Buffer): Promise<void> {
    const entry = this.#handles.get(this.#id(handle));
    if (!entry) throw new SftpStatusError(STATUS_CODE.FAILURE, 'invalid handle');
    this.#handles.delete(this.#id(handle));
    if (entry.kind === 'file') await entry.file.close();
  }

  #id(handle: Buffer): number {
    return handle.length === 4 ? handle.readUInt32BE(0) : -1;
  }

  /** The session is gone: close every file; handles opened later are closed at once. */
  closeAll(): void {
    this.#closed = true;
    for (const entry of this.#handles.values()) {
      if (entry.kind === 'file') void entry.file.close().catch(() => undefined);
    }
    this.#handles.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// SFTP session

function errnoOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}

/** fs errors → SFTP v3 status codes, as OpenSSH's sftp-server maps them. */
function statusOf(error: unknown): number {
  if (error instanceof SftpStatusError) return error.status;
  switch (errnoOf(error)) {
    case 'ENOENT': case 'ENOTDIR': case 'EBADF': case 'ELOOP': return STATUS_CODE.NO_SUCH_FILE;
    case 'EACCES': case 'EPERM': case 'EROFS': return STATUS_CODE.PERMISSION_DENIED;
    case 'ENAMETOOLONG': case 'EINVAL': return STATUS_CODE.BAD_MESSAGE;
    default: return STATUS_CODE.FAILURE;
  }
}

function fsFlagsOf(flags: number): number {
  const read = (flags & OPEN_MODE.READ) !== 0;
  const write = (flags & OPEN_MODE.WRITE) !== 0;
  let result = read && write ? fsConstants.O_RDWR : write ? fsConstants.O_WRONLY : fsConstants.O_RDONLY;
  if (flags & OPEN_MODE.APPEND) result |= fsConstants.O_APPEND;
  if (flags & OPEN_MODE.CREAT) result |= fsConstants.O_CREAT;
  if (flags & OPEN_MODE.TRUNC) result |= fsConstants.O_TRUNC;
  if (flags & OPEN_MODE.EXCL) result |= fsConstants.O_EXCL;
  return result;
}

function attrsOf(st: Stats): Attributes {
  const seconds = (ms: number) => Math.floor(ms / 1000);
  return { mode: st.mode, uid: st.uid, gid: st.gid, size: st.size, atime: seconds(st.atimeMs), mtime: seconds(st.mtimeMs) };
}

/** `ls -l` style line: clients (ssh2-sftp-client's `list`) take the entry type from it. */
function longnameOf(name: string, st: Stats): string {
  const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? '-' : st.isFIFO() ? 'p' : st.isSocket() ? 's' : 'c';
  const perms = [...'rwxrwxrwx'].map((c, i) => (st.mode & (0o400 >> i) ? c : '-')).join('');
  const date = st.mtime.toUTCString().slice(5, 16); // "02 Jan 2024"
  return `${type}${perms} ${st.nlink} ${st.uid} ${st.gid} ${st.size} ${date} ${name}`;
}

async function applyAttrs(target: string | FileHandle, attrs: Partial<Attributes>): Promise<void> {
  const onPath = typeof target === 'string';
  if (attrs.size !== undefined) await (onPath ? fs.truncate(target, attrs.size) : target.truncate(attrs.size));
  if (attrs.mode !== undefined) await (onPath ? fs.chmod(target, attrs.mode & 0o7777) : target.chmod(attrs.mode & 0o7777));
  // SFTP v3 sets both times or neither (ACMODTIME).
  const { atime, mtime } = attrs;
  if (atime !== undefined && mtime !== undefined) await (onPath ? fs.utimes(target, atime, mtime) : target.utimes(atime, mtime));
}

/** Strings (uint32 length + bytes) of an EXTENDED request's payload. */
function readStrings(data: Buffer | undefined, count: number): Buffer[] {
  const result: Buffer[] = [];
  let offset = 0;
  for (let i = 0; i < count; i++) {
    if (!data || offset + 4 > data.length) throw new SftpStatusError(STATUS_CODE.BAD_MESSAGE, 'malformed request');
    const length = data.readUInt32BE(offset);
    if (offset + 4 + length > data.length) throw new SftpStatusError(STATUS_CODE.BAD_MESSAGE, 'malformed request');
    result.push(data.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length;
  }
  return result;
}

interface SftpInternals {
  _protocol: { channelData(id: number, data: Buffer): void };
  outgoing: { window: number };
}

/**
 * ssh2 answers INIT with a fixed VERSION packet that lists no extensions, and has no option for
 * them. We swap that one packet (the first this channel sends) for one that lists ours, through
 * ssh2 internals (`_protocol`, `outgoing.window`) that have been stable across 1.x.
 */
function advertiseExtensions(sftp: SFTPWrapper, extensions: Record<string, string>): void {
  const uint32 = (n: number) => Buffer.from([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
  const sshString = (text: string) => Buffer.concat([uint32(Buffer.byteLength(text)), Buffer.from(text)]);
  const fields = Object.entries(extensions).flatMap(([name, value]) => [sshString(name), sshString(value)]);
  const body = Buffer.concat([Buffer.from([2 /* SSH_FXP_VERSION */]), uint32(3), ...fields]);
  const version = Buffer.concat([uint32(body.length), body]);

  const internals = sftp as unknown as SftpInternals;
  const protocol = internals._protocol;
  internals._protocol = new Proxy(protocol, {
    get(target, key) {
      if (key === 'channelData') {
        return (id: number, data: Buffer) => {
          internals._protocol = protocol;
          const extra = version.length - data.length;
          const isVersion = data.length === 9 && data[4] === 2;
          if (isVersion && internals.outgoing.window >= extra) {
            internals.outgoing.window -= extra;
            data = version;
          }
          protocol.channelData(id, data);
        };
      }
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

function serveSftp(sftp: SFTPWrapper, root: string, posixRename: boolean): void {
  advertiseExtensions(sftp, { 'fsync@openssh.com': '1', ...(posixRename && { 'posix-rename@openssh.com': '1' }) });
  const handles = new HandleTable();
  sftp.on('error', () => undefined);
  sftp.on('close', () => handles.closeAll());
  // The client is done (EOF): close our side too, or OpenSSH's sftp waits for it forever.
  sftp.on('end', () => {
    handles.closeAll();
    sftp.end();
  });
  const inRoot = (p: string, followLast = true) => confine(root, p, followLast);
  const file = (handle: Buffer) => handles.get(handle, 'file').file;

  /** Serves one request type: `work` replies itself; a failure becomes a status reply. */
  const on = <A extends unknown[]>(event: string, work: (reqId: number, ...args: A) => Promise<unknown>) => {
    sftp.on(event, (reqId: number, ...args: A) => {
      work(reqId, ...args).catch((error: unknown) => {
        // Our own messages name client paths; an fs error's would show host paths: send its code only.
        sftp.status(reqId, statusOf(error), error instanceof SftpStatusError ? error.message : (errnoOf(error) ?? 'failure'));
      });
    });
  };
  /** Serves a request whose only answer is a status: OK once `work` resolves. */
  const onStatus = <A extends unknown[]>(event: string, work: (...args: A) => Promise<unknown>) => {
    on(event, async (reqId, ...args: A) => {
      await work(...args);
      sftp.status(reqId, STATUS_CODE.OK);
    });
  };

  on('REALPATH', async (reqId, p: string) => {
    const name = toClientPath(root, await realLocation(await inRoot(p)));
    sftp.name(reqId, [{ filename: name, longname: name, attrs: {} as Attributes }]);
  });
  on('STAT', async (reqId, p: string) => sftp.attrs(reqId, attrsOf(await fs.stat(await inRoot(p)))));
  on('LSTAT', async (reqId, p: string) => sftp.attrs(reqId, attrsOf(await fs.lstat(await inRoot(p, false)))));
  on('FSTAT', async (reqId, handle: Buffer) => sftp.attrs(reqId, attrsOf(await file(handle).stat())));
  onStatus('SETSTAT', async (p: string, attrs: Partial<Attributes>) => applyAttrs(await inRoot(p), attrs));
  onStatus('FSETSTAT', async (handle: Buffer, attrs: Partial<Attributes>) => applyAttrs(file(handle), attrs));

  on('OPEN', async (reqId, p: string, flags: number, attrs: Partial<Attributes>) => {
    const opened = await fs.open(await inRoot(p), fsFlagsOf(flags), (attrs.mode ?? 0o644) & 0o7777);
    const handle = handles.add({ kind: 'file', file: opened, append: (flags & OPEN_MODE.APPEND) !== 0 });
    if (handle) sftp.handle(reqId, handle);
  });
  on('READ', async (reqId, handle: Buffer, offset: number, length: number) => {
    const buffer = Buffer.alloc(Math.min(length, READ_MAX_BYTES));
    const { bytesRead } = await file(handle).read(buffer, 0, buffer.length, offset);
    if (bytesRead === 0) sftp.status(reqId, STATUS_CODE.EOF);
    else sftp.data(reqId, buffer.subarray(0, bytesRead));
  });
  // Clients pipeline many WRITEs at different offsets (fastPut): each is a positioned write.
  onStatus('WRITE', async (handle: Buffer, offset: number, data: Buffer) => {
    const { file: target, append } = handles.get(handle, 'file');
    for (let done = 0; done < data.length;) {
      done += (await target.write(data, done, data.length - done, append ? null : offset + done)).bytesWritten;
    }
  });
  onStatus('CLOSE', async (handle: Buffer) => handles.remove(handle));

  on('OPENDIR', async (reqId, p: string) => {
    const hostPath = await inRoot(p);
    if (!(await fs.stat(hostPath)).isDirectory()) throw new SftpStatusError(STATUS_CODE.FAILURE, `not a directory: ${p}`);
    const handle = handles.add({ kind: 'dir', hostPath, pending: null });
    if (handle) sftp.handle(reqId, handle);
  });
  on('READDIR', async (reqId, handle: Buffer) => {
    const dir = handles.get(handle, 'dir');
    dir.pending ??= await fs.readdir(dir.hostPath);
    const entries: FileEntry[] = [];
    for (const name of dir.pending.splice(0, READDIR_BATCH)) {
      const st = await fs.lstat(path.join(dir.hostPath, name)).catch(() => null); // gone meanwhile
      if (st) entries.push({ filename: name, longname: longnameOf(name, st), attrs: attrsOf(st) });
    }
    if (entries.length > 0) sftp.name(reqId, entries);
    else sftp.status(reqId, STATUS_CODE.EOF);
  });

  onStatus('MKDIR', async (p: string, attrs: Partial<Attributes>) => fs.mkdir(await inRoot(p, false), { mode: (attrs.mode ?? 0o755) & 0o7777 }));
  onStatus('RMDIR', async (p: string) => fs.rmdir(await inRoot(p, false)));
  onStatus('REMOVE', async (p: string) => fs.unlink(await inRoot(p, false)));
  onStatus('RENAME', async (from: string, to: string) => {
    const [source, target] = [await inRoot(from, false), await inRoot(to, false)];
    // SFTP v3 never replaces an existing target: that is what posix-rename is for.
    if (await fs.lstat(target).then(() => true, () => false)) throw new SftpStatusError(STATUS_CODE.FAILURE, `target exists: ${to}`);
    await fs.rename(source, target);
  });
  onStatus('EXTENDED', async (name: string, data: Buffer | undefined) => {
    if (name === 'posix-rename@openssh.com' && posixRename) {
      const [from = '', to = ''] = readStrings(data, 2).map((b) => b.toString('utf8'));
      return fs.rename(await inRoot(from, false), await inRoot(to, false));
    }
    if (name === 'fsync@openssh.com') return file(readStrings(data, 1)[0] ?? Buffer.alloc(0)).sync();
    throw new SftpStatusError(STATUS_CODE.OP_UNSUPPORTED, `unsupported extension: ${name}`);
  });
}

// ---------------------------------------------------------------------------------------------
// Authentication and the listener

/**
 * A new ed25519 key pair (OpenSSH format). ssh2 encodes a public key whose first byte is 0 one
 * byte short, so its own parser rejects 1 key in 256 ("Malformed OpenSSH public/private key"):
 * a pair is only returned once both halves parse.
 */
export function generateKeyPair(encryption?: { passphrase: string; cipher: string; rounds: number }): { private: string; public: string } {
  for (let attempt = 1; ; attempt += 1) {
    const pair = encryption ? utils.generateKeyPairSync('ed25519', encryption) : utils.generateKeyPairSync('ed25519');
    const parses = !(utils.parseKey(pair.private, encryption?.passphrase) instanceof Error) && !(utils.parseKey(pair.public) instanceof Error);
    if (parses || attempt >= 20) return pair;
  }
}

/** A new ed25519 host key (OpenSSH format) that ssh2 reads back. */
export function generateHostKey(): string {
  return generateKeyPair().private;
}

function parseOneKey(text: string | Buffer, what: string): ParsedKey {
  const parsed: ParsedKey | ParsedKey[] | Error = utils.parseKey(text);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error) throw new Error(`Embedded SFTP server: cannot parse ${what}: ${key?.message ?? 'no key'}`);
  return key;
}

/** Constant-time comparison that does not leak the length either. */
function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

interface Credentials { username: string; password?: string; key?: ParsedKey }

function authenticate(ctx: AuthContext, credentials: Credentials): void {
  const methods: Array<'password' | 'publickey'> = [];
  if (credentials.password !== undefined) methods.push('password');
  if (credentials.key) methods.push('publickey');
  const userOk = sameSecret(ctx.username, credentials.username);
  if (userOk && ctx.method === 'password' && credentials.password !== undefined) {
    if (sameSecret(ctx.password, credentials.password)) return ctx.accept();
  }
  if (userOk && ctx.method === 'publickey' && credentials.key) {
    const { key } = credentials;
    if (ctx.key.data.equals(key.getPublicSSH())) {
      // Without a signature the client only asks whether this key would do (ssh2 answers PK_OK).
      if (!ctx.signature) return ctx.accept();
      if (ctx.blob && key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true) return ctx.accept();
    }
  }
  ctx.reject(methods);
}

export async function startEmbeddedSftpServer(options: EmbeddedSftpServerOptions): Promise<EmbeddedSftpServer> {
  if (options.password === undefined && options.authorizedKey === undefined) {
    throw new Error('Embedded SFTP server: give a password or an authorizedKey');
  }
  await fs.mkdir(options.root, { recursive: true });
  const root = await fs.realpath(options.root);
  const hostKey = options.hostKey ?? generateHostKey();
  const parsedHostKey = parseOneKey(hostKey, 'hostKey');
  const hostPublic = parsedHostKey.getPublicSSH();
  const credentials: Credentials = { username: options.username, password: options.password };
  if (options.authorizedKey !== undefined) credentials.key = parseOneKey(options.authorizedKey, 'authorizedKey');
  const posixRename = options.supportPosixRename ?? true;

  // No compression: ssh2's server throws "Invalid Zlib instance" from a closing channel after a
  // compressed session ends (an uncaught exception that would take the host process down).
  const ssh = new Server({ hostKeys: [hostKey], algorithms: { compress: ['none'] } }, (client: Connection) => {
    client.on('error', () => undefined); // a client vanishing mid-transfer is routine
    client.on('authentication', (ctx) => authenticate(ctx, credentials));
    client.on('ready', () => {
      client.on('session', (accept) => {
        accept().on('sftp', (acceptSftp) => serveSftp(acceptSftp(), root, posixRename));
      });
    });
  });
  const sockets = new Set<net.Socket>();
  const listener = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    // Replies are small and come in pairs (FSETSTAT + CLOSE): with Nagle's algorithm the second
    // waits for the client's delayed ACK, about 40 ms on Linux.
    socket.setNoDelay(true);
    ssh.injectSocket(socket);
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(options.port ?? 0, host, () => {
      listener.off('error', reject);
      resolve();
    });
  });

  let closing: Promise<void> | null = null;
  const dropAllConnections = () => {
    for (const socket of sockets) socket.destroy();
  };
  const close = () => {
    closing ??= (async () => {
      const closed = [new Promise<void>((resolve) => listener.close(() => resolve()))];
      for (const socket of sockets) {
        closed.push(new Promise<void>((resolve) => socket.once('close', () => resolve())));
        socket.end();
      }
      const timer = setTimeout(dropAllConnections, CLOSE_GRACE_MS);
      await Promise.all(closed);
      clearTimeout(timer);
    })();
    return closing;
  };

  return {
    host,
    port: (listener.address() as net.AddressInfo).port,
    hostKeyFingerprint: `SHA256:${createHash('sha256').update(hostPublic).digest('base64').replace(/=+$/, '')}`,
    hostPublicKey: `${parsedHostKey.type} ${hostPublic.toString('base64')}`,
    get connections() {
      return sockets.size;
    },
    close,
    dropAllConnections,
  };
}
