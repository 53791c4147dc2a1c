/**
 * Remote paths are always relative to the transport's remote folder and can never leave it,
 * whatever a local file is called.
 */
import path from 'node:path';
import { PushtaskError } from '../shared/errors.js';

/** Normalises a relative remote path ('/'-separated) or throws UNSAFE_PATH. */
export function safeRemotePath(relative: string): string {
  const unixy = relative.split(path.sep).join('/');
  if (unixy.includes('\0')) throw unsafe(relative, 'contains a NUL byte');
  if (unixy.startsWith('/') || unixy.startsWith('\\') || /^[A-Za-z]:/.test(unixy)) throw unsafe(relative, 'is absolute');
  const parts = unixy.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.length === 0) throw unsafe(relative, 'is empty');
  // Windows servers also treat a backslash as a separator: a local name '..\\x' must not climb out.
  if (parts.some((part) => part.split('\\').includes('..'))) throw unsafe(relative, 'climbs out with ".."');
  return parts.join('/');
}

/** FTP commands end at CR LF: a path holding either cannot be sent (basic-ftp refuses it too). */
export function assertFtpSafe(remotePath: string): void {
  if (/[\r\n]/.test(remotePath)) throw unsafe(remotePath, 'contains a line break (CR or LF), which FTP commands cannot carry');
}

function unsafe(relative: string, why: string): PushtaskError {
  return new PushtaskError('UNSAFE_PATH', `Refusing remote path ${JSON.stringify(relative)}: it ${why}`);
}

/** Joins a remote folder and a relative path with '/' (remote servers are not the local OS). */
export function joinRemote(remoteDir: string, relative: string): string {
  const safe = safeRemotePath(relative);
  const base = remoteDir.replace(/\/+$/, '');
  if (base === '') return remoteDir.startsWith('/') ? `/${safe}` : safe;
  return `${base}/${safe}`;
}

/** For local destinations: the absolute target, guaranteed to be inside `root`. */
export function confinedLocalPath(root: string, relative: string): string {
  const target = path.resolve(root, ...safeRemotePath(relative).split('/'));
  const resolvedRoot = path.resolve(root);
  const rootWithSep = resolvedRoot.endsWith(path.sep) ? resolvedRoot : resolvedRoot + path.sep;
  if (!target.startsWith(rootWithSep)) throw unsafe(relative, `leaves ${root}`);
  return target;
}

/** A remote folder below `remoteDir`: `''` or `'.'` is `remoteDir` itself, anything else as joinRemote. */
export function joinRemoteDir(remoteDir: string, relative: string): string {
  if (relative === '' || relative === '.') return remoteDir;
  return joinRemote(remoteDir, relative);
}

/** For local destinations: a folder inside `root` (`''` = root itself). */
export function confinedLocalDir(root: string, relative: string): string {
  if (relative === '' || relative === '.') return path.resolve(root);
  return confinedLocalPath(root, relative);
}
