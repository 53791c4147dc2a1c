import { describe, expect, it } from 'vitest';
import { SnapshotLookahead, type WaitingFile } from '../../src/subtask/snapshotLookahead.js';

const file = (name: string): WaitingFile => ({ kind: 'drop', source: `/drop/${name}`, remotePath: name, size: 100, queuedAt: 0 });

/** A lookahead over a fake uploader queue, recording which files were admitted (true) or turned away (false). */
function setup(limit: number) {
  const queue: string[] = [];
  const lookahead = new SnapshotLookahead(limit, () => queue.length);
  const outcomes = new Map<string, boolean>();
  const admit = (name: string) => void lookahead.admit(file(name)).then((admitted) => outcomes.set(name, admitted));
  /** The agent's side: an admitted file's snapshot enters the queue. */
  const snapshotTaken = (name: string) => {
    queue.push(name);
    lookahead.done();
  };
  /** The uploader's side: a lane takes the oldest snapshot. */
  const laneTakes = () => {
    queue.shift();
    lookahead.wake();
  };
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return { lookahead, queue, outcomes, admit, snapshotTaken, laneTakes, settle };
}

describe('SnapshotLookahead', () => {
  it('admits files while the queue and the snapshots under way stay below the limit, then one per snapshot the lanes take, in order', async () => {
    const t = setup(3);
    for (const name of ['a', 'b', 'c', 'd', 'e']) t.admit(name);
    await t.settle();
    expect([...t.outcomes.keys()]).toEqual(['a', 'b', 'c']);
    expect([...t.lookahead.waiting()].map((waiting) => waiting.remotePath)).toEqual(['d', 'e']);
    // Snapshots being taken count as much as queued ones: taking them frees nothing.
    for (const name of ['a', 'b', 'c']) t.snapshotTaken(name);
    await t.settle();
    expect(t.outcomes.has('d')).toBe(false);
    t.laneTakes();
    await t.settle();
    expect(t.outcomes.get('d')).toBe(true);
    expect(t.outcomes.has('e')).toBe(false);
    t.snapshotTaken('d');
    t.laneTakes();
    await t.settle();
    expect(t.outcomes.get('e')).toBe(true);
    expect([...t.lookahead.waiting()]).toEqual([]);
  });

  it('a snapshot that came to nothing (file gone) frees its place', async () => {
    const t = setup(1);
    t.admit('gone');
    t.admit('next');
    await t.settle();
    expect(t.outcomes.has('next')).toBe(false);
    t.lookahead.done(); // no snapshot queued
    await t.settle();
    expect(t.outcomes.get('next')).toBe(true);
  });

  it('never lets a newcomer overtake a waiting file', async () => {
    const t = setup(1);
    t.admit('first');
    t.admit('second');
    await t.settle();
    t.snapshotTaken('first');
    t.laneTakes(); // room for one: the waiting 'second', not a newcomer
    t.admit('third');
    await t.settle();
    expect(t.outcomes.get('second')).toBe(true);
    expect(t.outcomes.has('third')).toBe(false);
  });

  it('admitAll (graceful stop) admits every waiting and later file; close (hard stop) turns them away', async () => {
    const graceful = setup(1);
    for (const name of ['a', 'b', 'c']) graceful.admit(name);
    graceful.lookahead.admitAll();
    graceful.admit('d');
    await graceful.settle();
    expect([...graceful.outcomes.values()]).toEqual([true, true, true, true]);

    const hard = setup(1);
    for (const name of ['a', 'b', 'c']) hard.admit(name);
    hard.lookahead.close();
    hard.admit('d');
    await hard.settle();
    expect(Object.fromEntries(hard.outcomes)).toEqual({ a: true, b: false, c: false, d: false });
    expect([...hard.lookahead.waiting()]).toEqual([]);
  });
});
