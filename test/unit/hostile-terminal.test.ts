/**
 * File names reach terminals through `pushtask status` and the console log: names holding ESC
 * sequences, BEL, CR or newlines must show up as visible escapes, never act on the terminal or
 * forge a line of output.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { formatStatus } from '../../src/cli/statusFormat.js';
import { createLogger } from '../../src/shared/logger.js';
import { printable } from '../../src/shared/printable.js';
import type { AgentStatus } from '../../src/subtask/status.js';
import { recordCount } from '../helpers/hostileCounts.js';

const HOSTILE = [
  '/data/drop/\u001b[2J\u001b[Hcleared.txt', // clear screen, cursor home
  '/data/drop/\u001b]0;owned\u0007title.txt', // set the window title
  '/data/drop/over\rwritten.txt', // CR: overwrite the line
  '/data/drop/fake\nUploaded /etc/shadow.txt', // a forged line
  '/data/drop/c1-\u009b31mred.txt', // C1 CSI
  '/data/drop/nul\u0000del\u007f.txt',
];

/** Control characters other than the newlines between lines and tabs. */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

describe('printable', () => {
  it('escapes every control character except tab, and leaves other text (unicode too) alone', () => {
    expect(printable('a\u001b[2Jb\r\nc\td\u0007é日本😀')).toBe('a\\u001b[2Jb\\r\\nc\td\\u0007é日本😀');
    for (let code = 0; code < 0xa0; code += 1) {
      const char = String.fromCharCode(code);
      const shown = printable(char);
      if (code === 9 || (code >= 0x20 && code < 0x7f)) expect(shown).toBe(char);
      else expect(shown).not.toMatch(CONTROL);
    }
  });
});

describe('pushtask status with hostile file names', () => {
  it('shows every name with visible escapes, one line per entry', () => {
    const at = new Date().toISOString();
    const item = (file: string) => ({ file, remotePath: file.split('/').pop()!, bytes: 1, queuedAt: at });
    const status: AgentStatus = {
      pid: process.pid,
      startedAt: at,
      updatedAt: at,
      running: true,
      transport: 'local folder /remote',
      connection: { state: 'connected', since: at, nextRetryAt: null },
      queue: { length: HOSTILE.length, bytes: HOSTILE.length, items: HOSTILE.map(item) },
      inFlight: HOSTILE.map((file) => ({ ...item(file), startedAt: at })),
      counters: { notifies: 0, uploads: 0, bytesUploaded: 0, failures: 1 },
      heartbeat: null,
      lastError: { at, file: HOSTILE[0]!, code: 'UNSAFE_PATH', message: `Refusing remote path ${HOSTILE[3]!}` },
      files: Object.fromEntries(HOSTILE.map((file) => [file, { lastUpload: { at, bytes: 1, ms: 1, remotePath: file }, lastError: { at, code: 'X', message: file } }])),
    };
    const text = formatStatus(status, { now: Date.now() });
    expect(text).not.toMatch(CONTROL);
    expect(text).toContain('\\u001b[2J');
    expect(text).toContain('fake\\nUploaded /etc/shadow.txt');
    expect(text.split('\n').filter((line) => line.startsWith('Uploaded'))).toEqual([]);
  });
});

describe('console log lines with hostile file names', () => {
  it('carry the names as visible escapes, one line per record', async () => {
    let output = '';
    const consoleStream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        output += chunk.toString();
        done();
      },
    });
    const logger = createLogger({ name: 'subtask', level: 'info', console: true, consoleStream });
    for (const file of HOSTILE) logger.info(`Uploaded ${file} → x (1 bytes, 1 ms)`);
    logger.flush();
    await new Promise((resolve) => setImmediate(resolve));
    expect(output).not.toMatch(CONTROL);
    expect(output.trim().split('\n')).toHaveLength(HOSTILE.length);
    expect(output).toContain('over\\rwritten.txt');
    await recordCount('terminal.hostileNames', HOSTILE.length);
  });
});
