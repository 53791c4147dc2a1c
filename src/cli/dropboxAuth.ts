/**
 * `pushtask dropbox-auth`: connects a Dropbox account through OAuth PKCE and prints the refresh
 * token for the `dropbox` transport. PKCE needs no app secret and no redirect URL, so it works on
 * a headless logger: the user opens the URL anywhere, allows the app and pastes the code back.
 */
import readline from 'node:readline';
import { PushtaskError } from '../shared/errors.js';
import { authorizeUrl, createPkcePair, exchangeCode, oauthUrls, parseAuthorizationCode } from '../transports/dropboxAuth.js';
import { parseCommandArgs } from './args.js';
import { type CliIO, type Command, processIO } from './command.js';
import { EXIT_OK, UsageError, reportError } from './errors.js';

const NAME = 'dropbox-auth';
/** The code exchange is one small request; a user who pasted the code should not wait forever. */
const EXCHANGE_TIMEOUT_MS = 60_000;

const help = `Usage: pushtask dropbox-auth --app-key KEY [--app-secret SECRET] [--base-url URL]

Connects pushtask to a Dropbox account and prints a refresh token for the config's
\`transport: { type: 'dropbox', ... }\`. Dropbox access tokens last four hours; the refresh token
lets pushtask get new ones by itself and stays valid until the app is disconnected.

Before you start, create an app at https://www.dropbox.com/developers/apps ("Scoped access";
"App folder" access is enough), tick \`files.content.write\` on its Permissions tab, and copy its
App key from the Settings tab.

Then:
  1. run this command and open the URL it prints (on any device),
  2. sign in, click "Allow", and copy the code Dropbox shows,
  3. paste the code here. The refresh token and a config snippet are printed.

Options:
  --app-key KEY        your app's key (required)
  --app-secret SECRET  your app's secret; not needed (PKCE), give it only to bind the token to it
  --base-url URL       use a Dropbox-compatible server instead of dropbox.com (tests)
  --debug              show stack traces on errors
  -h, --help           show this help

Examples:
  pushtask dropbox-auth --app-key abc123xyz
  PUSHTASK_DROPBOX_REFRESH_TOKEN=... pushtask watch --config pushtask.config.ts
`;

export const command: Command = {
  name: NAME,
  summary: 'connect a Dropbox account (PKCE) and print the refresh token for the config',
  help,
  run: runDropboxAuth,
};

/** The command as a function: resolves with the exit code, errors reported like every command's. */
export async function dropboxAuthCommand(argv: string[], io: CliIO = processIO()): Promise<number> {
  try {
    return await runDropboxAuth(argv, io);
  } catch (error) {
    return reportError(error, { debug: argv.includes('--debug'), write: io.err });
  }
}

async function runDropboxAuth(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseCommandArgs(NAME, argv, {
    'app-key': { type: 'string' },
    'app-secret': { type: 'string' },
    'base-url': { type: 'string' },
  });
  if (values.help) {
    io.out(help);
    return EXIT_OK;
  }
  const appKey = values['app-key']?.trim();
  if (!appKey) throw new UsageError('--app-key KEY is required (the App key on your app\'s Settings tab in the Dropbox App Console)', NAME);
  const appSecret = values['app-secret'] || undefined;
  const baseUrl = values['base-url'];
  if (baseUrl !== undefined && !URL.canParse(baseUrl)) throw new UsageError(`--base-url: expected a URL like http://127.0.0.1:8080, got ${JSON.stringify(baseUrl)}`, NAME);

  const pkce = createPkcePair();
  io.out(
    `1. Open this URL in a browser (on any device) and sign in to Dropbox:\n\n` +
      `   ${authorizeUrl({ appKey, challenge: pkce.challenge, ...(baseUrl ? { baseUrl } : {}) })}\n\n` +
      `2. Click "Allow" and copy the code Dropbox shows.\n` +
      `3. Paste the code here and press Enter: `,
  );
  const pasted = await readFirstLine(io.stdin);
  if (pasted === undefined) {
    io.out('\n');
    throw new PushtaskError('AUTH_FAILED', 'No code was entered (input ended); run `pushtask dropbox-auth` again.');
  }
  if (!io.stdin.isTTY) io.out('\n'); // a piped code is not echoed: end the prompt's line ourselves

  const grant = await exchangeCode({
    code: parseAuthorizationCode(pasted),
    verifier: pkce.verifier,
    appKey,
    appSecret,
    tokenUrl: oauthUrls(baseUrl).token,
    signal: AbortSignal.timeout(EXCHANGE_TIMEOUT_MS),
  });
  if (!grant.refreshToken) {
    throw new PushtaskError('AUTH_FAILED', 'Dropbox answered without a refresh token (was offline access refused?); run `pushtask dropbox-auth` again.');
  }
  io.out(successText({ appKey, refreshToken: grant.refreshToken, withSecret: appSecret !== undefined, baseUrl }));
  return EXIT_OK;
}

function successText(options: { appKey: string; refreshToken: string; withSecret: boolean; baseUrl: string | undefined }): string {
  const lines = [
    `    type: 'dropbox',`,
    `    appKey: ${JSON.stringify(options.appKey)},`,
    `    refreshToken: process.env.PUSHTASK_DROPBOX_REFRESH_TOKEN,`,
    ...(options.withSecret ? [`    appSecret: process.env.PUSHTASK_DROPBOX_APP_SECRET,`] : []),
    `    remoteDir: '/pushtask',`,
    ...(options.baseUrl ? [`    baseUrl: ${JSON.stringify(options.baseUrl)},`] : []),
  ];
  return (
    `\nConnected. Your refresh token (a secret: keep it like a password):\n\n` +
    `  ${options.refreshToken}\n\n` +
    `Put it in the environment of the process that runs pushtask:\n\n` +
    `  export PUSHTASK_DROPBOX_REFRESH_TOKEN='${options.refreshToken}'\n` +
    (options.withSecret ? `  export PUSHTASK_DROPBOX_APP_SECRET='...'\n` : '') +
    `\nand use this transport in your config (or paste the token in place of process.env...):\n\n` +
    `  transport: {\n${lines.join('\n')}\n  },\n`
  );
}

/** The first non-empty line of `input`, or undefined if it ends first. */
function readFirstLine(input: NodeJS.ReadableStream): Promise<string | undefined> {
  return new Promise((resolve) => {
    const rl = readline.createInterface({ input, terminal: false, crlfDelay: Infinity });
    let answered = false;
    rl.on('line', (line) => {
      if (answered || line.trim() === '') return;
      answered = true;
      resolve(line);
      rl.close();
    });
    rl.once('close', () => {
      if (!answered) resolve(undefined);
    });
  });
}
