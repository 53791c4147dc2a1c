/**
 * deploy/pushtask.service and deploy/config.ts: the unit has what running unattended needs, the
 * example config is valid, and everything it writes is writable inside the unit's sandbox.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../src/config/load.js';
import { TERM_GRACE_MS } from '../../src/master/subtaskProcess.js';

type Unit = Record<string, Record<string, string[]>>;

/** systemd's INI dialect, as far as this unit uses it: sections, `Key=value` (repeatable), comments. */
function parseUnit(text: string): Unit {
  const unit: Unit = {};
  let section: Record<string, string[]> | null = null;
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) {
      section = unit[header[1]!] ??= {};
      continue;
    }
    const pair = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!pair || !section) throw new Error(`pushtask.service line ${index + 1} is not Key=value in a section: ${raw}`);
    (section[pair[1]!] ??= []).push(pair[2]!);
  }
  return unit;
}

const unit = parseUnit(fs.readFileSync('deploy/pushtask.service', 'utf8'));
const service = unit.Service!;
const one = (key: string) => {
  expect(service[key], `${key}= in [Service]`).toHaveLength(1);
  return service[key]![0]!;
};

describe('deploy/pushtask.service', () => {
  it('runs `pushtask watch` on the config, restarts it on failure, reloads with SIGHUP', () => {
    expect(one('Type')).toBe('simple');
    expect(one('ExecStart')).toBe('/usr/bin/env pushtask watch --config /etc/pushtask/config.ts');
    expect(one('Restart')).toBe('on-failure');
    expect(one('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(unit.Install?.WantedBy).toEqual(['multi-user.target']);
    expect(unit.Unit?.After).toContain('network-online.target');
  });

  it('stops gracefully: SIGTERM to the main process, with more time than the graceful stop takes', () => {
    expect(one('KillSignal')).toBe('SIGTERM');
    expect(one('KillMode')).toBe('mixed');
    const defaultGracefulSec = 10; // gracefulTimeoutMs default
    expect(Number(one('TimeoutStopSec'))).toBeGreaterThan(defaultGracefulSec + TERM_GRACE_MS / 1000);
  });

  it('runs as a dedicated user with secrets from an EnvironmentFile, never on the command line', () => {
    expect(one('User')).toBe('pushtask');
    expect(one('User')).not.toBe('root');
    expect(one('EnvironmentFile')).toBe('-/etc/pushtask/pushtask.env');
    expect(service.Environment).toBeUndefined();
    expect(one('ExecStart')).not.toMatch(/password|token|secret/i);
  });

  it('is hardened, and still lets Node run', () => {
    for (const [key, value] of Object.entries({ NoNewPrivileges: 'yes', ProtectSystem: 'strict', ProtectHome: 'yes', PrivateTmp: 'yes' })) {
      expect(one(key), key).toBe(value);
    }
    expect(one('CapabilityBoundingSet')).toBe('');
    // V8's JIT needs W+X memory.
    expect(service.MemoryDenyWriteExecute ?? ['no']).toEqual(['no']);
  });

  it('deploy/config.ts is valid and writes only where the sandbox allows (StateDirectory, LogsDirectory)', async () => {
    const writable = [`/var/lib/${one('StateDirectory')}`, `/var/log/${one('LogsDirectory')}`, ...(service.ReadWritePaths ?? [])];
    const inside = (dir: string) => writable.some((root) => dir === root || dir.startsWith(`${root}/`));
    process.env.PUSHTASK_PASSWORD = 'from-the-environment-file';
    try {
      const { resolved } = await loadConfigFile(path.resolve('deploy/config.ts'));
      expect(resolved.transport).toMatchObject({ password: 'from-the-environment-file' });
      for (const dir of [resolved.spoolDir, path.dirname(resolved.log.masterFile), ...resolved.watch.map((entry) => entry.path)]) {
        expect(inside(dir), `${dir} is writable for the service`).toBe(true);
      }
      expect(one('WorkingDirectory')).toBe(`/var/lib/${one('StateDirectory')}`);
    } finally {
      delete process.env.PUSHTASK_PASSWORD;
    }
  });

  it('is installed the way the README says', () => {
    const readme = fs.readFileSync('README.md', 'utf8');
    const section = readme.slice(readme.indexOf('## Running as a service'));
    expect(section).toMatch(/^## Running as a service\n/);
    for (const text of ['deploy/pushtask.service', 'deploy/config.ts', '/etc/pushtask/config.ts', '/etc/pushtask/pushtask.env', 'systemctl reload pushtask', 'useradd']) {
      expect(section, text).toContain(text);
    }
  });
});
