/** Log files rotate by size and reopen on request (issue 13): real files in a temp folder. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { closeLogFiles, reopenLogFiles } from '../../src/shared/logFiles.js';
import { createLogger } from '../../src/shared/logger.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-logs-'));
});
afterEach(async () => {
  await closeLogFiles();
  fs.rmSync(dir, { recursive: true, force: true });
});

const lines = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);

describe('log files', () => {
  it('rotate by size into .1 … .keep under the live name, deleting the oldest; every line stays whole JSON', async () => {
    const file = path.join(dir, 'logs', 'pushtask-master.log');
    const logger = createLogger({ name: 'master', level: 'info', file, console: false, rotation: { maxBytes: 4096, keep: 3 } });
    for (let i = 0; i < 400; i++) {
      logger.info(`line ${i} ${'x'.repeat(60)}`);
      if (i % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 20)); // let rotations happen
    }
    await closeLogFiles();
    expect(fs.readdirSync(path.join(dir, 'logs')).sort()).toEqual(['pushtask-master.log', 'pushtask-master.log.1', 'pushtask-master.log.2', 'pushtask-master.log.3']);
    const all = ['.3', '.2', '.1', ''].flatMap((suffix) => lines(file + suffix));
    for (const line of all) expect(() => JSON.parse(line)).not.toThrow();
    // The newest lines are in the live file, the kept ones in order, the oldest deleted.
    const numbers = all.map((line) => Number(/line (\d+)/.exec(JSON.parse(line).msg)![1]));
    expect(numbers.at(-1)).toBe(399);
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    expect(numbers[0]).toBeGreaterThan(0);
    expect(fs.statSync(file + '.1').size).toBeLessThan(4096 + 200);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it('never rotate with maxBytes 0', async () => {
    const file = path.join(dir, 'plain.log');
    const logger = createLogger({ name: 'master', level: 'info', file, console: false, rotation: { maxBytes: 0, keep: 1 } });
    for (let i = 0; i < 200; i++) logger.info('y'.repeat(100));
    await closeLogFiles();
    expect(fs.readdirSync(dir)).toEqual(['plain.log']);
    expect(lines(file)).toHaveLength(200);
  });

  it('reopen under the same name after logrotate moved the file away (SIGUSR1)', async () => {
    const file = path.join(dir, 'pushtask-subtask.log');
    const logger = createLogger({ name: 'subtask', level: 'info', file, console: false });
    logger.info('before the move');
    await new Promise((resolve) => setTimeout(resolve, 50));
    fs.renameSync(file, `${file}.moved`);
    logger.info('after the move, before the signal'); // still the moved file: the descriptor is open
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(reopenLogFiles()).toBe(1);
    logger.info('after the signal');
    await closeLogFiles();
    expect(lines(`${file}.moved`).map((line) => JSON.parse(line).msg)).toEqual(['before the move', 'after the move, before the signal']);
    expect(lines(file).map((line) => JSON.parse(line).msg)).toEqual(['after the signal']);
  });

  it('share one stream per file within a process (two loggers on the master log do not rotate it under each other)', async () => {
    const file = path.join(dir, 'shared.log');
    const a = createLogger({ name: 'master', level: 'info', file, console: false, rotation: { maxBytes: 2048, keep: 2 } });
    const b = createLogger({ name: 'cli', level: 'info', file, console: false, rotation: { maxBytes: 2048, keep: 2 } });
    for (let i = 0; i < 60; i++) (i % 2 ? a : b).info(`n${i} ${'z'.repeat(40)}`);
    await closeLogFiles();
    const all = ['.2', '.1', ''].flatMap((suffix) => (fs.existsSync(file + suffix) ? lines(file + suffix) : []));
    expect(all.map((line) => JSON.parse(line).msg.split(' ')[0]).slice(-5)).toEqual(['n55', 'n56', 'n57', 'n58', 'n59']);
  });
});
