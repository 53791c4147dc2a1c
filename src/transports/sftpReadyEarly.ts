/**
 * An SFTP session on OpenSSH usable a round trip sooner, which on a cellular link is 100 ms or
 * more per reconnect. After the server's VERSION, ssh2 asks OpenSSH for its `limits@openssh.com`
 * and says "ready" only once they are in. It needs them for nothing a session starts with: for a
 * server that names itself OpenSSH it already assumes OpenSSH's sizes (256 KiB packets), which
 * the answer confirms. So "ready" follows VERSION at once, and the limits answer, when it comes,
 * is applied by ssh2's own code as before (its second "ready" muted). A transfer sized by the
 * limits (fastPut of a large file) waits for them: sftpLimitsKnown().
 *
 * ssh2 has no option for this, so one of its per-connection objects is wrapped (as
 * sshKeyLogin.ts does): the channel manager's `update`, where the SFTP object is born. Other
 * servers, and anything unexpected (a future ssh2 that renames these), keep ssh2's own sequence,
 * losing only the saving. The gate is ssh2's own `_isOpenSSH` rather than isOpenSshVersion()
 * (openssh.ts): it is the condition under which ssh2 assumes OpenSSH's sizes and asks for the
 * limits, which is the behaviour changed here.
 *
 * Not done: sending the SFTP INIT right behind the subsystem request. OpenSSH opens a session
 * channel with a window of 0 and widens it only once the subsystem runs, so ssh2 holds the INIT
 * back until then anyway (tried: no round trip saved).
 */

interface SftpInternals {
  _isOpenSSH?: boolean;
  _requests?: Record<string, unknown>;
  emit(event: string | symbol, ...args: unknown[]): boolean;
  once(event: string, listener: () => void): unknown;
}

interface SshInternals {
  _chanMgr?: { update?: (id: number, value: unknown) => void };
}

/** Resolved once the server's limits are known (or never will be). */
const limitsKnown = new WeakMap<object, Promise<void>>();

export function sftpLimitsKnown(sftp: object): Promise<void> {
  return limitsKnown.get(sftp) ?? Promise.resolve();
}

function isOpenSshSftp(value: unknown): value is SftpInternals {
  const candidate = value as Partial<SftpInternals> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    candidate._isOpenSSH === true &&
    typeof candidate._requests === 'object' &&
    candidate._requests !== null &&
    typeof candidate.emit === 'function' &&
    typeof candidate.once === 'function'
  );
}

/** Wraps the connection's channel manager (call at 'connect'); returns whether it could. */
export function readySftpBeforeLimits(ssh: unknown): boolean {
  const channels = ((ssh ?? {}) as SshInternals)._chanMgr;
  const update = channels?.update;
  if (!channels || typeof update !== 'function') return false;
  channels.update = function (this: unknown, id: number, value: unknown) {
    update.call(this, id, value);
    if (isOpenSshSftp(value)) catchLimitsRequest(value);
  };
  return true;
}

/**
 * ssh2 files the limits request in `_requests` and emits "ready" from its callback. The entry is
 * caught as it is filed: "ready" goes out on the next tick (after the request itself is sent),
 * and the callback, run when the answer comes, applies the limits without a second "ready".
 */
function catchLimitsRequest(sftp: SftpInternals): void {
  const requests = sftp._requests!;
  let settle = () => undefined as void;
  let caught = false;
  limitsKnown.set(sftp, new Promise<void>((resolve) => (settle = resolve)));
  sftp._requests = new Proxy(requests, {
    set(target, key, value: unknown) {
      const entry = value as { extended?: unknown; cb?: unknown } | null;
      if (typeof entry === 'object' && entry !== null && entry.extended === 'limits@openssh.com' && typeof entry.cb === 'function') {
        sftp._requests = target;
        caught = true;
        const applyLimits = entry.cb as (...args: unknown[]) => void;
        entry.cb = (...args: unknown[]) => {
          const emit = sftp.emit;
          sftp.emit = (event, ...rest) => (event === 'ready' ? false : emit.call(sftp, event, ...rest));
          try {
            applyLimits(...args);
          } finally {
            sftp.emit = emit;
            settle();
          }
        };
        process.nextTick(() => sftp.emit('ready'));
      }
      return Reflect.set(target, key, value);
    },
  });
  // A server whose VERSION offers no limits: ssh2 says "ready" itself.
  sftp.once('ready', () => {
    if (caught) return;
    sftp._requests = requests;
    settle();
  });
  sftp.once('close', () => settle());
}
