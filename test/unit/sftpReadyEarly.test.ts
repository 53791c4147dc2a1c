import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { readySftpBeforeLimits, sftpLimitsKnown } from '../../src/transports/sftpReadyEarly.js';

/**
 * Stands in for ssh2's SFTP object and the part of its VERSION handler that matters here: with
 * the extension it files a limits request whose callback applies the limits and emits "ready";
 * without it, it emits "ready" at once.
 */
class FakeSftp extends EventEmitter {
  _isOpenSSH: boolean;
  _requests: Record<string, unknown> = {};
  maxOpenHandles: number | undefined;
  sent: string[] = [];
  constructor(isOpenSsh: boolean) {
    super();
    this._isOpenSSH = isOpenSsh;
  }
  receiveVersion(withLimits: boolean): void {
    if (!withLimits) {
      this.emit('ready');
      return;
    }
    this._requests[7] = {
      extended: 'limits@openssh.com',
      cb: (error: Error | undefined, limits: { maxOpenHandles: number }) => {
        if (!error) this.maxOpenHandles = limits.maxOpenHandles;
        this.emit('ready');
      },
    };
    this.sent.push('limits@openssh.com');
  }
  receiveLimits(maxOpenHandles: number): void {
    const entry = this._requests[7] as { cb: (error: Error | undefined, limits: { maxOpenHandles: number }) => void };
    delete this._requests[7];
    entry.cb(undefined, { maxOpenHandles });
  }
}

/** ssh2's Client as far as the wrapper sees it: a channel manager whose update() meets the SFTP object. */
function fakeClient() {
  const channels: unknown[] = [];
  return { _chanMgr: { update: (id: number, value: unknown) => void (channels[id] = value) }, channels };
}

const tick = () => new Promise((resolve) => process.nextTick(resolve));

describe('SFTP ready before the limits answer (OpenSSH)', () => {
  it('says ready once, right after VERSION, and applies the limits when they come', async () => {
    const client = fakeClient();
    expect(readySftpBeforeLimits(client)).toBe(true);
    const sftp = new FakeSftp(true);
    client._chanMgr.update(0, sftp);
    expect(client.channels[0]).toBe(sftp);
    let readies = 0;
    sftp.on('ready', () => (readies += 1));
    let known = false;
    void sftpLimitsKnown(sftp).then(() => (known = true));
    sftp.receiveVersion(true);
    expect(sftp.sent).toEqual(['limits@openssh.com']); // the request still goes out
    expect(readies).toBe(0); // not before the request is sent
    await tick();
    expect(readies).toBe(1);
    expect(known).toBe(false);
    sftp.receiveLimits(1024);
    await tick();
    expect(readies).toBe(1);
    expect(sftp.maxOpenHandles).toBe(1024);
    expect(known).toBe(true);
    // The request table is a plain object again.
    sftp._requests[8] = { extended: 'other' };
    expect(Object.keys(sftp._requests)).toEqual(['8']);
  });

  it('leaves a session without the extension, and other servers, to ssh2', async () => {
    const client = fakeClient();
    readySftpBeforeLimits(client);
    const plain = new FakeSftp(true);
    client._chanMgr.update(0, plain);
    let readies = 0;
    plain.on('ready', () => (readies += 1));
    plain.receiveVersion(false);
    expect(readies).toBe(1);
    await expect(sftpLimitsKnown(plain)).resolves.toBeUndefined();

    const other = new FakeSftp(false);
    client._chanMgr.update(1, other);
    other.on('ready', () => (readies += 1));
    other.receiveVersion(true);
    await tick();
    expect(readies).toBe(1); // still waiting for its limits, as ssh2 does
    other.receiveLimits(64);
    expect(readies).toBe(2);
  });

  it('settles the wait when the channel closes before the limits come', async () => {
    const client = fakeClient();
    readySftpBeforeLimits(client);
    const sftp = new FakeSftp(true);
    client._chanMgr.update(0, sftp);
    sftp.receiveVersion(true);
    await tick();
    sftp.emit('close');
    await expect(sftpLimitsKnown(sftp)).resolves.toBeUndefined();
  });

  it('does nothing to an ssh2 without a channel manager', () => {
    expect(readySftpBeforeLimits({})).toBe(false);
    expect(readySftpBeforeLimits(null)).toBe(false);
  });
});
