/**
 * The in-process FTP server of the tests (test/helpers/ftpServer.ts) must survive what clients on
 * a loaded machine do: an exception it throws lands in the test process, and vitest then fails a
 * run whose tests all passed.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { startFtpServer, type TestFtpServer } from '../helpers/ftpServer.js';
import { waitFor } from '../helpers/workspace.js';

let srv: TestFtpServer | null = null;
afterEach(async () => {
  await srv?.close();
  srv = null;
});

/**
 * A minimal FTP client for a child process (`node -e <script> <port> …`): sends `commands` one per
 * reply, and on the PASV reply runs `onPasv`, JavaScript that sees the data port as `pasvPort`.
 * `rest` is appended to the script.
 */
function ftpClientScript(commands: string[], onPasv: string, rest = ''): string {
  return String.raw`
const fs = require('node:fs');
const net = require('node:net');
const control = net.connect(Number(process.argv[1]), '127.0.0.1');
let buffer = '';
const commands = ${JSON.stringify(commands)};
control.on('data', (chunk) => {
  buffer += chunk;
  let end;
  while ((end = buffer.indexOf('\r\n')) >= 0) {
    const line = buffer.slice(0, end);
    buffer = buffer.slice(end + 2);
    if (line[3] === '-') continue;
    const pasv = /\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(line);
    if (pasv) {
      const pasvPort = Number(pasv[5]) * 256 + Number(pasv[6]);
      ${onPasv}
    } else if (commands.length) control.write(commands.shift() + '\r\n');
  }
});
control.on('error', () => undefined);
${rest}`;
}

/**
 * Logs in, sends PASV; once the file `<second argument>.go` exists it connects to the data port,
 * resets the connection at once (SO_LINGER 0) as a client that gives up does, and then creates
 * the file named by its second argument.
 */
const CLIENT = ftpClientScript(
  ['USER alice', 'PASS wonderland', 'PASV'],
  `dataPort = pasvPort;
      console.log('pasv');`,
  String.raw`let dataPort = 0;
const go = setInterval(() => {
  if (!fs.existsSync(process.argv[2] + '.go')) return;
  clearInterval(go);
  const data = net.connect(dataPort, '127.0.0.1');
  data.on('connect', () => {
    data.resetAndDestroy();
    fs.writeFileSync(process.argv[2], 'reset');
  });
  data.on('error', () => undefined);
}, 5);
`,
);

it('survives a passive data connection that the client reset before the server accepted it', async () => {
  srv = await startFtpServer({ tls: false });
  const errors: unknown[] = [];
  const onError = (error: unknown) => errors.push(error);
  process.on('uncaughtException', onError);
  const done = path.join(srv.root, '..', `${path.basename(srv.root)}.reset`);
  const client = spawn(process.execPath, ['-e', CLIENT, String(srv.port), done], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    let out = '';
    client.stdout.on('data', (chunk) => (out += chunk));
    await waitFor(() => out.includes('pasv'), 'the PASV reply');
    fs.writeFileSync(`${done}.go`, '');
    // This process (the server's) does not accept while the client connects and resets: the
    // server then accepts a connection that is already dead, whatever the machine's load.
    const deadline = Date.now() + 10_000;
    while (!fs.existsSync(done) && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    expect(fs.existsSync(done), 'the client reset its data connection').toBe(true);
    fs.rmSync(done);
    fs.rmSync(`${done}.go`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(errors).toEqual([]);
  } finally {
    process.off('uncaughtException', onError);
    client.kill();
  }
});

/** A client that logs in and asks for data.bin over a passive data connection. */
const RETR_CLIENT = ftpClientScript(
  ['USER alice', 'PASS wonderland', 'TYPE I', 'PASV'],
  `const data = net.connect(pasvPort, '127.0.0.1');
      data.on('error', () => undefined);
      data.on('connect', () => control.write('RETR data.bin\\r\\n'));`,
);

it('survives being stopped while a RETR is opening its file', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-ftp-retr-'));
  fs.writeFileSync(path.join(root, 'data.bin'), Buffer.alloc(64 * 1024, 7));
  const readDelayMs = 500;
  const server = await startFtpServer({ tls: false, root, readDelayMs });
  const errors: unknown[] = [];
  const onError = (error: unknown) => errors.push(error);
  process.on('uncaughtException', onError);
  process.on('unhandledRejection', onError);
  const client = spawn(process.execPath, ['-e', RETR_CLIENT, String(server.port)], { stdio: 'ignore' });
  try {
    await waitFor(() => server.commands.includes('RETR data.bin'), 'the RETR command');
    // The data connection closes with the server while RETR still waits for the (slow) file.
    await server.close();
    await new Promise((resolve) => setTimeout(resolve, readDelayMs + 300));
    expect(errors).toEqual([]);
  } finally {
    process.off('uncaughtException', onError);
    process.off('unhandledRejection', onError);
    client.kill();
    fs.rmSync(root, { recursive: true, force: true });
  }
});
