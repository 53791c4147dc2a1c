/**
 * demo/logger.ts is the README's embedding example: run it as a user would and check that every
 * row it wrote arrived, and that it exits by itself with code 0 after stop().
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const LOGGER = fileURLToPath(new URL('../../demo/logger.ts', import.meta.url));
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-logger-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function startLogger(args: string[]) {
  const child = spawn(process.execPath, ['--import', TSX, LOGGER, '--dir', path.join(dir, 'logger'), ...args], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.resume();
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const exited = new Promise<{ code: number | null; stdout: string }>((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout });
    });
  });
  return { child, exited };
}

const local = () => path.join(dir, 'logger', 'data.csv');
const remote = () => path.join(dir, 'logger', 'remote', 'data.csv');

// Real processes through tsx: generous on a busy two-core machine.
describe('demo/logger.ts', { timeout: 90_000 }, () => {
  it('writes 300 rows at a high rate, stops by itself and delivers a byte-identical CSV', async () => {
    const { code, stdout } = await startLogger(['--rate', '1000', '--rows', '300']).exited;
    expect(code).toBe(0);
    const rows = fs.readFileSync(local(), 'utf8').trimEnd().split('\n');
    expect(rows[0]).toBe('timestamp,seq,value');
    expect(rows).toHaveLength(301);
    expect(rows[300]).toMatch(/^\S+Z,300,-?\d\.\d{4}$/);
    expect(fs.readFileSync(remote())).toEqual(fs.readFileSync(local()));
    expect(stdout).toMatch(/stopped after 300 rows/);
  });

  it('stops cleanly on SIGTERM, delivering the rows burst mode was holding back', async () => {
    const { child, exited } = startLogger(['--rate', '200']);
    const deadline = Date.now() + 20_000;
    while (!fs.existsSync(remote()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    // Quick rows after the first upload start a burst: these are held until the burst expires (5 s).
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(fs.statSync(remote()).size).toBeLessThan(fs.statSync(local()).size);
    child.kill('SIGTERM');
    const { code } = await exited;
    expect(code).toBe(0);
    expect(fs.readFileSync(remote())).toEqual(fs.readFileSync(local()));
  });
});
