import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PushtaskError } from '../../src/shared/errors.js';
import { confinedLocalPath, joinRemote, safeRemotePath } from '../../src/transports/remotePath.js';

/** Asserts `fn` throws an UNSAFE_PATH PushtaskError whose message matches `why`. */
function expectUnsafe(fn: () => unknown, why: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(PushtaskError);
  expect((thrown as PushtaskError).code).toBe('UNSAFE_PATH');
  expect((thrown as PushtaskError).message).toMatch(why);
}

describe('safeRemotePath', () => {
  it.each([
    ['a.csv', 'a.csv'],
    ['sub/dir/a.csv', 'sub/dir/a.csv'],
    ['a//b/./c', 'a/b/c'],
    ['./a.csv', 'a.csv'],
    ['a/b/', 'a/b'],
    ['./././x', 'x'],
    ['..a/b..', '..a/b..'], // dots inside a name are fine
    ['...', '...'],
    ['.hidden', '.hidden'],
    ['a\\b.csv', 'a\\b.csv'], // a backslash is a legal character in a POSIX name
  ])('normalises %j to %j', (input, expected) => {
    expect(safeRemotePath(input)).toBe(expected);
  });

  it.each(['..', '../x', 'a/../b', 'a/b/..', './..', 'a/./../../x', '..//x', '..\\x', 'a\\..\\..\\x', 'x/..\\y'])(
    'rejects %j (climbs out)',
    (input) => {
      expectUnsafe(() => safeRemotePath(input), /climbs out with "\.\."/);
    },
  );

  it.each(['/etc/passwd', '/', '//server/share', 'C:', 'C:/Windows', 'c:\\x', 'z:relative', '\\x', '\\\\server\\share'])(
    'rejects %j (absolute)',
    (input) => {
      expectUnsafe(() => safeRemotePath(input), /is absolute/);
    },
  );

  it.each(['', '.', './', './/./'])('rejects %j (empty)', (input) => {
    expectUnsafe(() => safeRemotePath(input), /is empty/);
  });

  it.each(['a\0b', '\0', 'dir/\0/x', '../\0'])('rejects %j (NUL)', (input) => {
    expectUnsafe(() => safeRemotePath(input), /contains a NUL byte/);
  });

  it('quotes the offending path in the message', () => {
    expectUnsafe(() => safeRemotePath('../secret'), /^Refusing remote path "\.\.\/secret": it climbs out/);
  });

  it('keeps names with spaces, dashes, newlines and unicode as they are', () => {
    for (const name of ['my file.csv', '-rf', '--help', 'line\nbreak', 'ünïcödé-日本語.csv', 'a b/c d']) {
      expect(safeRemotePath(name)).toBe(name);
    }
  });

  it('is idempotent', () => {
    for (const input of ['a//b/./c', 'x/y', './z']) {
      const once = safeRemotePath(input);
      expect(safeRemotePath(once)).toBe(once);
    }
  });
});

describe('joinRemote', () => {
  it.each([
    ['incoming', 'a.csv', 'incoming/a.csv'],
    ['incoming/', 'a.csv', 'incoming/a.csv'],
    ['incoming///', 'sub/a.csv', 'incoming/sub/a.csv'],
    ['/var/data', 'x/./y.csv', '/var/data/x/y.csv'],
    ['', 'a.csv', 'a.csv'],
    ['/', 'a.csv', '/a.csv'],
    ['//', 'a/b', '/a/b'],
  ])('joinRemote(%j, %j) = %j', (dir, relative, expected) => {
    expect(joinRemote(dir, relative)).toBe(expected);
  });

  it('uses "/" even for the local OS separator style of the folder', () => {
    expect(joinRemote('remote', 'a//b')).toBe('remote/a/b');
  });

  it('checks the relative part', () => {
    expectUnsafe(() => joinRemote('incoming', '../outside'), /climbs out/);
    expectUnsafe(() => joinRemote('incoming', '/etc/passwd'), /is absolute/);
    expectUnsafe(() => joinRemote('incoming', ''), /is empty/);
  });
});

describe('confinedLocalPath', () => {
  const root = path.join(os.tmpdir(), 'pushtask-confined-root');

  it('places a relative path inside the root', () => {
    expect(confinedLocalPath(root, 'a.csv')).toBe(path.join(root, 'a.csv'));
    expect(confinedLocalPath(root, 'sub/dir/a.csv')).toBe(path.join(root, 'sub', 'dir', 'a.csv'));
    expect(confinedLocalPath(root, 'a//b/./c')).toBe(path.join(root, 'a', 'b', 'c'));
  });

  it('accepts a root with a trailing separator or written relatively', () => {
    expect(confinedLocalPath(root + path.sep, 'a.csv')).toBe(path.join(root, 'a.csv'));
    const relativeRoot = path.relative(process.cwd(), root);
    expect(confinedLocalPath(relativeRoot, 'a.csv')).toBe(path.join(root, 'a.csv'));
  });

  it('works with the file-system root as root', () => {
    const fsRoot = path.parse(process.cwd()).root;
    expect(confinedLocalPath(fsRoot, 'a/b.csv')).toBe(path.join(fsRoot, 'a', 'b.csv'));
  });

  it('does not confuse a sibling folder sharing the prefix with the root', () => {
    // 'root-evil' starts with 'root' but is outside; only reachable via '..', which is refused.
    expectUnsafe(() => confinedLocalPath(root, `../${path.basename(root)}-evil/x`), /climbs out/);
  });

  const hostile = [
    '../x',
    'a/../../x',
    '../../../../../../etc/passwd',
    '/etc/passwd',
    '//etc/passwd',
    'C:/Windows/system32',
    '..',
    '.',
    '',
    'a/b/../../..',
    'x/\0/y',
    '..\\..\\x',
    'name\nwith\nnewlines.csv',
    '\n',
    '-rf',
    '--no-preserve-root',
    '-',
    ' leading space',
    'ünïcödé/日本語.csv',
    '\u202Egnp.exe', // right-to-left override
    'a'.repeat(255),
    `${'b'.repeat(255)}/${'c'.repeat(255)}`,
    '.../x',
    '.hidden/..hidden',
    '~/x',
    '$HOME/x',
    '*',
    'a\\b',
    'con',
    'nul.txt',
  ];

  it.each(hostile)('either refuses %j or stays strictly inside the root', (name) => {
    let target: string;
    try {
      target = confinedLocalPath(root, name);
    } catch (error) {
      expect((error as PushtaskError).code).toBe('UNSAFE_PATH');
      return;
    }
    expect(target.startsWith(root + path.sep)).toBe(true);
    expect(path.relative(root, target).split(path.sep)).not.toContain('..');
    expect(path.isAbsolute(path.relative(root, target))).toBe(false);
  });

  it('refuses exactly the names that climb out, are absolute, empty or contain NUL', () => {
    const refused = hostile.filter((name) => {
      try {
        confinedLocalPath(root, name);
        return false;
      } catch {
        return true;
      }
    });
    expect(refused).toEqual([
      '../x',
      'a/../../x',
      '../../../../../../etc/passwd',
      '/etc/passwd',
      '//etc/passwd',
      'C:/Windows/system32',
      '..',
      '.',
      '',
      'a/b/../../..',
      'x/\0/y',
      '..\\..\\x',
    ]);
  });

  it('keeps odd but harmless names verbatim as the last segment', () => {
    for (const name of ['name\nwith\nnewlines.csv', '-rf', 'ünïcödé-日本語.csv', 'a'.repeat(255), '~', '$HOME']) {
      expect(confinedLocalPath(root, name)).toBe(path.join(root, name));
    }
  });
});
