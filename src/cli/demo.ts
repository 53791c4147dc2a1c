/**
 * `pushtask demo`: pysubtask's interactive demo. Without --config it needs no setup: it creates
 * its data files under ./demo-run/ and delivers them with the local transport to ./demo-run/remote/.
 * Reads commands line by line, from a terminal or a pipe (then it exits at the end of input).
 */
import path from 'node:path';
import readline from 'node:readline';
import { loadConfigFile } from '../config/load.js';
import type { PushtaskConfig } from '../config/schema.js';
import { TaskMaster } from '../master/TaskMaster.js';
import { parseCommandArgs } from './args.js';
import type { CliIO, Command } from './command.js';
import { demoConfig, demoDir, prepareDemoDir, startDemoServer } from './demoConfig.js';
import { DemoSession } from './demoSession.js';
import { EXIT_OK } from './errors.js';
import { printEvents } from './eventLines.js';
import { describeTarget } from './format.js';

const help = `Usage: pushtask demo [--config FILE]

pysubtask's interactive demo. Enter commands at the "Enter cmd:" prompt:
  x exit, a notify all, 0-n notify one file by index, c check pending (burst mode),
  r reset the subtask, s status, h help
Each notify, burst decision, upload, failure, (dis)connect and subtask exit is printed as it
happens. Also copy a file into demo-run/logs/watch_all_in_here/ and watch it being uploaded.

Without --config it works in ./demo-run/ (created): data files in demo-run/logs/, delivered over
SFTP to an embedded server on 127.0.0.1 that stores into demo-run/remote/, logs in
demo-run/logs/pushtask-*.log. Each notify
command first appends a line to the file, so there is new data to deliver.

Options:
  --config FILE  use this config file instead; its watched files are notified as they are
                 (the demo never writes to them)
  --debug        show stack traces on errors
  -h, --help     show this help

Commands can also come from a pipe; the demo stops gracefully at the end of the input.

Examples:
  pushtask demo
  pushtask demo --config pushtask.config.ts
  printf 'a\\n1\\nx\\n' | pushtask demo
`;

const PROMPT = 'Enter cmd: ';

export const command: Command = {
  name: 'demo',
  summary: "interactive demo: pysubtask's REPL, zero setup, delivering over SFTP to an embedded server",
  help,
  async run(argv, io) {
    const { values } = parseCommandArgs('demo', argv, { config: { type: 'string' } });
    if (values.config) {
      const loaded = await loadConfigFile(path.resolve(io.cwd, values.config));
      // The REPL prints its own event lines; the config's log files still get everything.
      const config: PushtaskConfig = { ...loaded.config, log: { ...loaded.config.log, console: false } };
      return runRepl(new TaskMaster(config, { cwd: loaded.cwd }), { io, base: loaded.cwd, appendData: false });
    }
    const cwd = demoDir(io.cwd);
    prepareDemoDir(cwd);
    const server = await startDemoServer(cwd);
    try {
      return await runRepl(new TaskMaster(demoConfig(server), { cwd }), { io, base: cwd, appendData: true });
    } finally {
      await server.close();
    }
  },
};

async function runRepl(master: TaskMaster, { io, base, appendData }: { io: CliIO; base: string; appendData: boolean }): Promise<number> {
  const tty = Boolean(io.stdin.isTTY && io.stdout.isTTY);
  let rl: readline.Interface | null = null;
  let prompting = false;
  // Event lines arrive while the prompt waits: in a terminal, print over it and redraw it below.
  // (Clearing also removes a stale prompt left by input typed ahead.)
  const print = (line: string) => {
    if (tty && rl) {
      readline.clearLine(io.stdout, 0);
      readline.cursorTo(io.stdout, 0);
    }
    io.out(`${line}\n`);
    if (tty && rl && prompting) rl.prompt(true);
  };
  const prompt = () => {
    if (!tty || !rl) return;
    rl.prompt();
    prompting = true;
  };
  const session = new DemoSession({ master, base, appendData, print });
  const unsubscribe = printEvents(master, print, base);
  let closed = false;
  const close = () => {
    closed = true;
    rl?.close();
  };
  process.once('SIGTERM', close);

  try {
    print(`pushtask demo in ${base}`);
    print(`  delivering to ${describeTarget(master.config)}; logs in ${path.dirname(master.config.log.masterFile)}`);
    await master.start();
    print(`started: subtask pid ${master.subtaskPid}`);
    print(session.help());
    if (closed) return EXIT_OK; // SIGTERM during start-up: straight to the graceful exit below
    // Created only now, right before the loop: readline starts reading at once, and lines read
    // before `for await` subscribes would be lost (piped input arrives all at once).
    rl = readline.createInterface({ input: io.stdin, output: tty ? io.stdout : undefined, terminal: tty, prompt: PROMPT });
    rl.on('SIGINT', close); // Ctrl-C at the prompt: the same graceful exit as `x`
    prompt();
    for await (const line of rl) {
      prompting = false;
      // Piped input is not echoed by a terminal: echo it so the transcript reads like a session.
      if (!tty) print(`${PROMPT}${line}`);
      if (!(await session.run(line))) break;
      prompt();
    }
  } finally {
    prompting = false;
    rl?.close();
    process.off('SIGTERM', close);
    if (master.running) await session.exit();
    unsubscribe();
  }
  return EXIT_OK;
}
