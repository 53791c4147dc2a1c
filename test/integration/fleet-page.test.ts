/**
 * The fleet page in a real browser: Debian's chromium driven by puppeteer-core, against a monitor
 * of two live agents (real subtasks, 1 s heartbeats, the local transport into one folder): the
 * rows, the offline state shortly after one agent stops, the filter, the detail view with its
 * chart; then a thousand fake clients. Skips, saying why, where chromium is missing.
 * `UPDATE_DOCS=1` also saves the screenshot the README shows (docs/fleet.png).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TaskMaster } from '../../src/index.js';
import { resolveConfig } from '../../src/config/resolve.js';
import { DEFAULT_THRESHOLDS } from '../../src/monitor/fleet.js';
import { FleetMonitor } from '../../src/monitor/fleetMonitor.js';
import { FleetReader } from '../../src/monitor/reader.js';
import { serveMonitor, type MonitorServer } from '../../src/monitor/server.js';
import { writeFakeClient, writeFakeFleet } from '../helpers/fakeFleet.js';
import { createWorkspace, testConfig, waitFor, type Workspace } from '../helpers/workspace.js';

const CHROMIUM = process.env.PUSHTASK_CHROMIUM ?? '/usr/bin/chromium';
const hasChromium = fs.existsSync(CHROMIUM);
if (!hasChromium) console.warn(`Skipping the fleet page's browser tests: ${CHROMIUM} is missing (apt-get install chromium).`);

let browser: Browser | null = null;
let profile = '';
let ws: Workspace;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  if (!hasChromium) return;
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'pushtask-chromium-'));
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

afterAll(async () => {
  await browser?.close();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  ws?.cleanup();
});

async function startMonitor(remote: string, intervalSec: number): Promise<{ server: MonitorServer; monitor: FleetMonitor }> {
  const config = resolveConfig({ watch: [{ file: 'unused' }], transport: { type: 'local', dir: remote } }, { cwd: ws.dir });
  const reader = await FleetReader.open(config);
  const monitor = new FleetMonitor(reader, DEFAULT_THRESHOLDS, intervalSec);
  const stop = new AbortController();
  const running = monitor.run(stop.signal);
  const server = await serveMonitor(monitor, { port: 0 });
  cleanups.push(async () => {
    stop.abort();
    await running;
    await server.close();
    await reader.close();
  });
  return { server, monitor };
}

async function openPage(url: string): Promise<Page> {
  const page = await browser!.newPage();
  cleanups.push(() => page.close());
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(String(error)));
  page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()}`));
  page.on('request', (request) => {
    if (!request.url().startsWith(url)) problems.push(`request elsewhere: ${request.url()}`);
  });
  cleanups.push(async () => expect(problems).toEqual([]));
  await page.setViewport({ width: 1280, height: 720 });
  await page.goto(url, { waitUntil: 'load' });
  return page;
}

const rows = (page: Page) =>
  page.$$eval('#fleet tbody tr[data-client]', (trs) => trs.map((tr) => ({ client: tr.getAttribute('data-client'), state: tr.getAttribute('data-state'), level: tr.getAttribute('data-level') })));

describe.skipIf(!hasChromium)('the fleet page in chromium', () => {
  it('shows two live agents, one going offline after it stops, the filter and the detail view', async () => {
    ws = createWorkspace('pushtask-page-');
    const remote = ws.path('remote');
    const agents = ['logger-a', 'logger-b'].map((name) => {
      ws.write(`${name}/data.csv`, `${name}\n`);
      const master = new TaskMaster(
        testConfig({ watch: [{ file: `${name}/data.csv` }], transport: { type: 'local', dir: remote }, heartbeat: { intervalSec: 1, name } }),
        { cwd: ws.dir },
      );
      cleanups.push(() => master.stop());
      return master;
    });
    await Promise.all(agents.map((agent) => agent.start()));
    await waitFor(() => fs.existsSync(path.join(remote, '.pushtask/logger-a.json')) && fs.existsSync(path.join(remote, '.pushtask/logger-b.json')), 'both status files');
    const { server } = await startMonitor(remote, 1);
    const page = await openPage(server.url);

    await page.waitForFunction(() => document.querySelectorAll('#fleet tbody tr[data-state="online"]').length === 2, { timeout: 15_000 });
    expect((await rows(page)).map((row) => row.client).sort()).toEqual(['logger-a', 'logger-b']);
    expect(await page.$eval('#summary', (el) => el.textContent)).toContain('2 online');

    // logger-b stops: its last heartbeat held 11 s (1 + 10), so it is offline about 11 s later.
    const stoppedAt = Date.now();
    await agents[1]!.stop();
    await page.waitForFunction(() => document.querySelector('#fleet tbody tr[data-client="logger-b"]')?.getAttribute('data-state') === 'offline', {
      timeout: 25_000,
    });
    const tookSec = (Date.now() - stoppedAt) / 1000;
    expect(tookSec).toBeGreaterThan(5);
    console.log(`logger-b shown offline ${tookSec.toFixed(1)} s after it stopped (heartbeat 1 s + 10 s grace, checks every 1 s)`);
    // Worst first: the offline (critical) client leads.
    expect((await rows(page))[0]).toEqual({ client: 'logger-b', state: 'offline', level: 'critical' });

    // The filter.
    await page.select('#state-filter', 'offline');
    expect(await rows(page)).toEqual([{ client: 'logger-b', state: 'offline', level: 'critical' }]);
    await page.select('#state-filter', 'online');
    expect((await rows(page)).map((row) => row.client)).toEqual(['logger-a']);
    await page.select('#state-filter', 'all');
    await page.type('#name-filter', '-a');
    expect((await rows(page)).map((row) => row.client)).toEqual(['logger-a']);
    await page.$eval('#name-filter', (el) => {
      (el as HTMLInputElement).value = '';
      el.dispatchEvent(new Event('input'));
    });

    // Sorting by a column, both ways.
    await page.click('th[data-sort="client"]');
    expect((await rows(page)).map((row) => row.client)).toEqual(['logger-a', 'logger-b']);
    await page.click('th[data-sort="client"]');
    expect((await rows(page)).map((row) => row.client)).toEqual(['logger-b', 'logger-a']);

    // The detail view, with the backlog chart once the monitor has a few points.
    await page.$eval('#fleet tbody tr[data-client="logger-a"]', (row) => (row as HTMLElement).click()); // see the click below
    await page.waitForSelector('#detail:not([hidden])');
    expect(await page.$eval('#detail-title', (el) => el.textContent)).toBe('logger-a');
    const fields = await page.$eval('#detail-fields', (el) => el.textContent ?? '');
    expect(fields).toContain(`host${os.hostname()}`);
    expect(fields).toMatch(/backlog0 file\(s\), 0 B/);
    expect(fields).toMatch(/connectionconnected since/);
    await page.waitForSelector('#detail-chart svg path.line', { timeout: 10_000 });

    // For the README: a few more clients in other states, the detail of the live agent open.
    const now = Date.now();
    writeFakeClient(remote, { name: 'pi-garage', ageSec: 4000, status: null }, now);
    writeFakeClient(remote, { name: 'field-station-3', ageSec: 20, status: { queue: { files: 42, bytes: 3_500_000, oldestQueuedAt: new Date(now - 5_400_000).toISOString() }, failingSince: new Date(now - 5_400_000).toISOString(), connection: { state: 'waiting-to-retry', since: new Date(now - 5_400_000).toISOString(), nextRetryAt: new Date(now + 20_000).toISOString() }, lastError: { at: new Date(now - 15_000).toISOString(), code: 'AUTH_FAILED', message: 'Authentication failed for logger@data.example.org:22 (password)' } } }, now);
    for (const name of ['weather-mast', 'lab-bench-2', 'boiler-room']) writeFakeClient(remote, { name, ageSec: 15 }, now);
    // A client whose backlog grows, then drains, over a few checks: the chart shows it.
    for (const files of [2, 5, 9, 14, 20, 12, 4]) {
      const oldestQueuedAt = new Date(now - 900_000).toISOString();
      writeFakeClient(remote, { name: 'tank-sensor-12', ageSec: 0, status: { queue: { files, bytes: files * 40_000, oldestQueuedAt } } }, Date.now());
      await new Promise((resolve) => setTimeout(resolve, 1100));
    }
    await page.waitForFunction(() => document.querySelectorAll('#fleet tbody tr[data-client]').length === 8, { timeout: 10_000 });
    await page.click('th[data-sort="level"]');
    await page.setViewport({ width: 1500, height: 700 });
    // Clicked inside the page in one step: the rows are re-rendered on resize and on every fetch,
    // so a row found by one call may be gone by the next (puppeteer's "not clickable").
    await page.waitForSelector('#fleet tbody tr[data-client="tank-sensor-12"]');
    await page.$eval('#fleet tbody tr[data-client="tank-sensor-12"]', (row) => (row as HTMLElement).click());
    // Once in CI (1 run of ~15) the detail did not show within 30 s of the click; a user would
    // click again, and so does the test (every 5 s), so a lost click is told apart from a page
    // that never shows the detail.
    let clicks = 1;
    for (const deadline = Date.now() + 30_000; ; clicks += 1) {
      const shown = await page
        .waitForFunction(() => document.querySelector('#detail-title')?.textContent === 'tank-sensor-12' && document.querySelector('#detail-chart svg'), { timeout: 5_000 })
        .then(() => true, () => false);
      if (shown) break;
      if (Date.now() > deadline) throw new Error(`the detail of tank-sensor-12 did not show after ${clicks} clicks`);
      await page.$eval('#fleet tbody tr[data-client="tank-sensor-12"]', (row) => (row as HTMLElement).click());
    }
    if (clicks > 1) console.warn(`fleet page: the detail showed after click ${clicks}`);
    const shot = path.join(ws.dir, 'fleet.png');
    await page.screenshot({ path: shot });
    const png = fs.readFileSync(shot);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.length).toBeGreaterThan(20_000);
    if (process.env.UPDATE_DOCS === '1') fs.copyFileSync(shot, path.resolve('docs/fleet.png'));
  }, 90_000);

  it('stays responsive with 1,000 clients', async () => {
    ws = createWorkspace('pushtask-page-');
    writeFakeFleet(ws.path('remote'), 1000);
    const { server, monitor } = await startMonitor(ws.path('remote'), 10);
    await waitFor(() => monitor.cycles > 0, 'the first cycle');
    const page = await openPage(server.url);
    await page.waitForFunction(() => document.querySelector('#shown')?.textContent === '1000 of 1000 shown', { timeout: 20_000 });
    // Only the rows on screen (and a margin) are in the DOM; the spacers keep the scroll height.
    const rendered = await page.$$eval('#fleet tbody tr[data-client]', (trs) => trs.length);
    expect(rendered).toBeGreaterThan(20);
    expect(rendered).toBeLessThan(120);
    const timing = await page.evaluate(async () => {
      // The script's work plus the layout it causes (forced by reading a layout property).
      const time = (action: () => void) => {
        const started = performance.now();
        action();
        void document.body.offsetHeight;
        return performance.now() - started;
      };
      const select = document.querySelector('#state-filter') as HTMLSelectElement;
      const filter = time(() => {
        select.value = 'offline';
        select.dispatchEvent(new Event('change'));
      });
      const offline = document.querySelector('#shown')!.textContent;
      const all = time(() => {
        select.value = 'all';
        select.dispatchEvent(new Event('change'));
      });
      const sort = time(() => (document.querySelector('th[data-sort="client"]') as HTMLElement).click());
      const first = document.querySelector('#fleet tbody tr[data-client]')!.getAttribute('data-client');
      // Scrolled to the end, the last rows are there.
      const scroll = time(() => {
        window.scrollTo(0, document.body.scrollHeight);
        window.dispatchEvent(new Event('scroll'));
      });
      await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 50)));
      const rows = [...document.querySelectorAll('#fleet tbody tr[data-client]')];
      const lastRow = rows.at(-1)!;
      const lastVisible = lastRow.getBoundingClientRect().bottom <= window.innerHeight + 1 && lastRow.getBoundingClientRect().bottom > 0;
      const detail = time(() => (lastRow as HTMLElement).click());
      return { filter, all, sort, scroll, detail, offline, first, last: lastRow.getAttribute('data-client'), lastVisible };
    });
    console.log(
      `fleet page with 1,000 clients: filter ${timing.filter.toFixed(0)} ms, all again ${timing.all.toFixed(0)} ms, sort ${timing.sort.toFixed(0)} ms, ` +
        `scroll to the end ${timing.scroll.toFixed(0)} ms, detail ${timing.detail.toFixed(0)} ms (script and layout)`,
    );
    expect(timing.offline).toBe('40 of 1000 shown');
    expect(timing.first).toBe('logger-0000'); // sorted by name
    expect(timing.last).toBe('logger-0999');
    expect(timing.lastVisible).toBe(true);
    await page.waitForFunction(() => document.querySelector('#detail-title')?.textContent === 'logger-0999');
  }, 90_000);
});
