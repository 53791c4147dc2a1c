/**
 * The read side of a transport (`list`, `read`), checked the same way for every protocol against
 * a remote folder seeded by `seedRemote`.
 */
import fs from 'node:fs';
import { expect } from 'vitest';
import type { RemoteEntry, Transport } from '../../src/transports/types.js';

const signal = () => AbortSignal.timeout(10_000);

/** Remote content every transport is checked against: a heartbeat, a data file, a sub-folder. */
export const MTIME = new Date('2026-03-04T05:06:07Z');
export function seedRemote(root: string, owner?: { uid: number; gid: number }): void {
  fs.mkdirSync(`${root}/incoming/sub`, { recursive: true });
  fs.writeFileSync(`${root}/incoming/logger-7.heartbeat`, '70\n');
  fs.writeFileSync(`${root}/incoming/data.csv`, 'a,b\n1,2\n');
  fs.writeFileSync(`${root}/incoming/sub/deep.txt`, 'deep');
  fs.writeFileSync(`${root}/incoming/big.bin`, Buffer.alloc(5000, 1));
  for (const name of ['logger-7.heartbeat', 'data.csv', 'big.bin']) fs.utimesSync(`${root}/incoming/${name}`, MTIME, MTIME);
  if (owner) {
    for (const file of ['incoming', 'incoming/sub', 'incoming/sub/deep.txt', 'incoming/logger-7.heartbeat', 'incoming/data.csv', 'incoming/big.bin']) {
      fs.chownSync(`${root}/${file}`, owner.uid, owner.gid);
    }
  }
}

function byName(entries: RemoteEntry[]): Record<string, Omit<RemoteEntry, 'name'>> {
  return Object.fromEntries(entries.map(({ name, ...rest }) => [name, rest]));
}

/** The same checks for every transport. */
export async function checkReadSide(transport: Transport): Promise<void> {
  const entries = byName(await transport.list!('', signal()));
  expect(Object.keys(entries).sort()).toEqual(['big.bin', 'data.csv', 'logger-7.heartbeat', 'sub']);
  expect(entries['logger-7.heartbeat']).toEqual({ kind: 'file', size: 3, mtime: MTIME });
  expect(entries['data.csv']).toMatchObject({ kind: 'file', size: 8 });
  expect(entries.sub?.kind).toBe('dir');

  expect(byName(await transport.list!('sub', signal()))['deep.txt']).toMatchObject({ kind: 'file', size: 4 });
  expect((await transport.read!('logger-7.heartbeat', 64, signal())).toString()).toBe('70\n');
  expect((await transport.read!('sub/deep.txt', 64, signal())).toString()).toBe('deep');

  await expect(transport.read!('big.bin', 100, signal())).rejects.toMatchObject({ code: 'REMOTE_READ_FAILED' });
  await expect(transport.read!('missing.heartbeat', 64, signal())).rejects.toMatchObject({
    code: 'REMOTE_READ_FAILED',
    message: expect.stringContaining('missing.heartbeat'),
  });
  await expect(transport.list!('nowhere', signal())).rejects.toMatchObject({ code: 'REMOTE_READ_FAILED', message: expect.stringContaining('nowhere') });
  await expect(transport.list!('../outside', signal())).rejects.toMatchObject({ code: 'UNSAFE_PATH' });
  await expect(transport.read!('../x.heartbeat', 64, signal())).rejects.toMatchObject({ code: 'UNSAFE_PATH' });
  // Still usable after the failures (a monitor keeps its connection between rounds).
  expect((await transport.read!('data.csv', 64, signal())).toString()).toBe('a,b\n1,2\n');
}

