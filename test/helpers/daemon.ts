/**
 * Running real server daemons (sshd, vsftpd) for tests: a free port, waiting until the daemon
 * answers, and stopping its whole process group (daemons fork a process per session).
 */
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';

/** A port that was free a moment ago (for daemons that must be told their port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** What proves a daemon is up: its greeting's first bytes, or (`'connect'`) that it accepts at all. */
export type Readiness = string | 'connect';

function answers(port: number, readiness: Readiness): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    if (readiness === 'connect') socket.once('connect', () => done(true));
    else socket.once('data', (data) => done(data.toString().startsWith(readiness)));
  });
}

/** Resolves once the daemon answers; rejects if it exits first or takes longer than `timeoutMs`. */
export async function waitForDaemon(
  name: string,
  port: number,
  child: ChildProcess,
  readiness: Readiness,
  stderr: () => string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: string | null = null;
  child.once('exit', (code, signal) => {
    exited = `${name} exited (${code ?? signal}) before answering: ${stderr().trim() || 'no message'}`;
  });
  while (Date.now() < deadline) {
    if (exited) throw new Error(exited);
    if (await answers(port, readiness)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${name} did not answer on 127.0.0.1:${port} within ${timeoutMs / 1000} s: ${stderr().trim()}`);
}

/** SIGTERM to the group (listener and sessions), SIGKILL after 2 s, and once more for stragglers. */
export async function stopProcessGroup(child: ChildProcess): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return;
  const running = child.exitCode === null && child.signalCode === null;
  const exited = running ? new Promise((resolve) => child.once('exit', resolve)) : Promise.resolve();
  signalGroup(pid, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), 2000);
  await exited;
  clearTimeout(timer);
  signalGroup(pid, 'SIGKILL');
}

/** Signals a detached child's whole process group. */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is gone already.
  }
}
