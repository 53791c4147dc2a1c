// The fleet page of `pushtask monitor --serve`: plain JavaScript, no build step, no external
// assets. Fetches /api/clients every interval, renders the table (sortable, filterable), and a
// detail panel with the client's backlog over the monitor's lifetime (/api/history).
'use strict';

const LEVEL_RANK = { ok: 0, warning: 1, critical: 2 };
const STATE_RANK = { online: 0, unknown: 1, offline: 2 };
const $ = (selector) => document.querySelector(selector);

const view = { snapshot: null, sort: null, descending: true, selected: null, timer: null, shown: [], window: null };
/** Rows have one height (style.css; measured once rendered): only rows in and near the viewport are in the DOM. */
let rowHeight = 28;
const OVERSCAN = 30;

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function bytes(n) {
  if (n === null || n === undefined) return '';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

function duration(sec) {
  if (sec === null || sec === undefined) return '';
  const s = Math.round(Math.abs(sec));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

function ago(iso) {
  if (!iso) return '';
  const ms = Date.now() - Date.parse(iso);
  if (Number.isNaN(ms)) return '';
  return ms < 0 ? `in ${duration(-ms / 1000)}` : `${duration(ms / 1000)} ago`;
}

function errorText(client) {
  if (client.state === 'unknown' && client.problem) return client.problem;
  if (client.lastError && client.failingSince) return `${client.lastError.code}: ${client.lastError.message}`;
  if (client.statusProblem) return client.statusProblem;
  return '';
}

const SORT_KEYS = {
  level: (c) => LEVEL_RANK[c.level] * 10 + STATE_RANK[c.state],
  client: (c) => c.client.toLowerCase(),
  state: (c) => STATE_RANK[c.state],
  lastSeen: (c) => (c.lastSeen ? Date.parse(c.lastSeen) : -Infinity),
  backlogBytes: (c) => c.backlogBytes ?? -1,
  oldestPendingSec: (c) => c.oldestPendingSec ?? -1,
  lastUploadAt: (c) => (c.lastUploadAt ? Date.parse(c.lastUploadAt) : -Infinity),
  error: (c) => errorText(c).toLowerCase(),
};

function visibleClients() {
  const clients = view.snapshot ? view.snapshot.clients : [];
  const state = $('#state-filter').value;
  const name = $('#name-filter').value.trim().toLowerCase();
  let shown = clients.filter((c) => {
    if (state === 'problems' && c.level === 'ok') return false;
    if (['online', 'offline', 'unknown'].includes(state) && c.state !== state) return false;
    return !name || c.client.toLowerCase().includes(name);
  });
  if (view.sort) {
    const key = SORT_KEYS[view.sort];
    const sign = view.descending ? -1 : 1;
    // The server's order (worst first) breaks ties: Array.prototype.sort is stable.
    shown = shown.slice().sort((a, b) => {
      const x = key(a);
      const y = key(b);
      return x < y ? -sign : x > y ? sign : 0;
    });
  }
  return shown;
}

function row(c) {
  const selected = c.client === view.selected ? ' class="selected"' : '';
  const backlog = c.backlogBytes === null ? '<span class="muted">no status file</span>' : `${c.backlogFiles} · ${bytes(c.backlogBytes)}`;
  return `<tr data-client="${escapeHtml(c.client)}" data-state="${c.state}" data-level="${c.level}"${selected}>` +
    `<td><span class="badge level-${c.level}">${c.level}</span></td>` +
    `<td>${escapeHtml(c.client)}</td>` +
    `<td class="state-${c.state}">${c.state}</td>` +
    `<td title="${escapeHtml(c.lastSeen ?? '')}">${ago(c.lastSeen)}</td>` +
    `<td class="num">${backlog}</td>` +
    `<td class="num">${c.backlogFiles ? duration(c.oldestPendingSec) : ''}</td>` +
    `<td title="${escapeHtml(c.lastUploadAt ?? '')}">${ago(c.lastUploadAt)}</td>` +
    `<td class="err" title="${escapeHtml(errorText(c))}">${escapeHtml(errorText(c))}</td></tr>`;
}

function render() {
  const snapshot = view.snapshot;
  if (!snapshot) return;
  const s = snapshot.summary;
  $('#summary').innerHTML =
    `<span>${s.clients} clients</span><span>${s.online} online</span><span>${s.offline} offline</span><span>${s.unknown} unknown</span>` +
    `<span class="badge level-${s.level}">${s.level}</span>`;
  $('#checked').textContent = snapshot.checkedAt
    ? `${snapshot.target} · checked ${ago(snapshot.checkedAt)} in ${snapshot.cycleMs} ms · every ${snapshot.intervalSec} s`
    : `${snapshot.target} · first check running…`;
  const error = $('#error');
  error.hidden = !snapshot.error;
  error.textContent = snapshot.error ? `The last check failed: ${snapshot.error} (showing the check before)` : '';
  view.shown = visibleClients();
  view.window = null;
  renderRows();
  $('#shown').textContent = `${view.shown.length} of ${snapshot.clients.length} shown`;
  for (const th of document.querySelectorAll('th[data-sort]')) {
    th.setAttribute('aria-sort', th.dataset.sort === view.sort ? (view.descending ? 'descending' : 'ascending') : 'none');
  }
  if (view.selected) renderDetail();
}

/**
 * Puts the rows that are on screen (plus a margin) into the table, with spacer rows for the rest:
 * the browser lays out a few dozen rows, not a thousand, on every refresh and scroll.
 */
function renderRows() {
  const tbody = $('#fleet tbody');
  const total = view.shown.length;
  const top = tbody.getBoundingClientRect().top + window.scrollY;
  const first = Math.max(0, Math.floor((window.scrollY - top) / rowHeight) - OVERSCAN);
  const last = Math.min(total, Math.max(first, Math.ceil((window.scrollY + window.innerHeight - top) / rowHeight)) + OVERSCAN);
  if (view.window && view.window[0] === first && view.window[1] === last) return;
  view.window = [first, last];
  const spacer = (rows, where) => (rows > 0 ? `<tr class="spacer" data-spacer="${where}"><td colspan="8"></td></tr>` : '');
  tbody.innerHTML = spacer(first, 'top') + view.shown.slice(first, last).map(row).join('') + spacer(total - last, 'bottom');
  // Heights through the CSSOM: the Content-Security-Policy allows no inline style attributes.
  const topRow = tbody.querySelector('tr[data-spacer="top"]');
  const bottomRow = tbody.querySelector('tr[data-spacer="bottom"]');
  if (topRow) topRow.style.height = `${first * rowHeight}px`;
  if (bottomRow) bottomRow.style.height = `${(total - last) * rowHeight}px`;
  const sample = tbody.querySelector('tr[data-client]');
  const measured = sample ? sample.getBoundingClientRect().height : 0;
  if (measured > 0 && Math.abs(measured - rowHeight) > 0.01) {
    rowHeight = measured;
    view.window = null;
    renderRows();
  }
}

let scrollPending = false;
function onScroll() {
  if (scrollPending) return;
  scrollPending = true;
  requestAnimationFrame(() => {
    scrollPending = false;
    renderRows();
  });
}

function field(name, value) {
  return `<dt>${escapeHtml(name)}</dt><dd>${escapeHtml(value === null || value === undefined || value === '' ? '—' : value)}</dd>`;
}

function renderDetail() {
  const c = view.snapshot && view.snapshot.clients.find((x) => x.client === view.selected);
  const panel = $('#detail');
  document.body.classList.toggle('detail-open', Boolean(c));
  if (!c) { panel.hidden = true; return; }
  panel.hidden = false;
  $('#detail-title').textContent = c.client;
  const st = c.status;
  const rows = [
    field('level', `${c.level}${c.reasons.length ? ` (${c.reasons.join(', ')})` : ''}`),
    field('state', c.state),
    field('last heartbeat', c.lastSeen ? `${c.lastSeen} (${ago(c.lastSeen)})` : null),
    field(c.state === 'offline' ? 'offline since' : 'next heartbeat due by', c.offlineAt),
    c.problem ? field('heartbeat problem', c.problem) : '',
    c.statusProblem ? field('status file', c.statusProblem) : '',
  ];
  if (st) {
    rows.push(
      field('host', st.host),
      field('pushtask', st.pushtask),
      field('running since', `${st.startedAt} (${ago(st.startedAt)})`),
      field('status written', `${st.writtenAt} (${ago(st.writtenAt)})`),
      field('connection', `${st.connection.state} since ${st.connection.since}${st.connection.nextRetryAt ? `, next try ${st.connection.nextRetryAt}` : ''}`),
      field('backlog', `${st.queue.files} file(s), ${bytes(st.queue.bytes)}`),
      field('oldest pending', st.queue.oldestQueuedAt ? `${st.queue.oldestQueuedAt} (${ago(st.queue.oldestQueuedAt)})` : null),
      field('last upload', st.lastUploadAt ? `${st.lastUploadAt} (${ago(st.lastUploadAt)})` : null),
      field('failing since', st.failingSince),
      field('last error', st.lastError ? `${st.lastError.code}: ${st.lastError.message} (${st.lastError.at})` : null),
      field('since start', `${st.sinceStart.uploads} uploads, ${bytes(st.sinceStart.bytes)}, ${st.sinceStart.failures} failures, ${st.sinceStart.notifies} notifies`),
      field('in total', `${st.total.uploads} uploads, ${bytes(st.total.bytes)}, ${st.total.failures} failures`),
      field('failures by code', Object.entries(st.total.failuresByCode).map(([k, v]) => `${k} ${v}`).join(', ')),
      field('spool disk', st.spoolDisk ? `${bytes(st.spoolDisk.freeBytes)} free of ${bytes(st.spoolDisk.totalBytes)}` : null),
    );
  }
  $('#detail-fields').innerHTML = rows.join('');
  void loadChart(c.client);
}

async function loadChart(client) {
  const response = await fetch(`api/history?client=${encodeURIComponent(client)}`, { cache: 'no-store' });
  if (!response.ok || view.selected !== client) return;
  const { points } = await response.json();
  $('#detail-chart').innerHTML = chart(points);
}

/** Backlog bytes over time as an inline SVG line (no library). */
function chart(points) {
  const known = points.filter((p) => p.bytes !== null);
  if (known.length < 2) return '<p class="muted">The backlog chart fills in as the monitor keeps running (or the client has no status file).</p>';
  const W = 500, H = 120, P = 22;
  const t0 = known[0].t, t1 = known[known.length - 1].t;
  const peak = Math.max(...known.map((p) => p.bytes));
  const max = Math.max(1, peak);
  const x = (t) => P + ((t - t0) / Math.max(1, t1 - t0)) * (W - 2 * P);
  const y = (b) => H - P + 6 - (b / max) * (H - 2 * P);
  const line = known.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.bytes).toFixed(1)}`).join('');
  const area = `${line}L${x(t1).toFixed(1)},${y(0).toFixed(1)}L${x(t0).toFixed(1)},${y(0).toFixed(1)}Z`;
  return `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="backlog over time">` +
    `<path class="area" d="${area}"/><path class="line" d="${line}"/>` +
    `<text x="${P}" y="12">backlog since the monitor started; peak ${escapeHtml(bytes(peak))}</text>` +
    `<text x="${P}" y="${H - 4}">${escapeHtml(new Date(t0).toLocaleTimeString())}</text>` +
    `<text x="${W - P}" y="${H - 4}" text-anchor="end">${escapeHtml(new Date(t1).toLocaleTimeString())}</text></svg>`;
}

async function refresh() {
  try {
    const response = await fetch('api/clients', { cache: 'no-store' });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    view.snapshot = await response.json();
    render();
  } catch (error) {
    const box = $('#error');
    box.hidden = false;
    box.textContent = `Cannot reach the monitor: ${error.message}`;
  }
  schedule();
}

function schedule() {
  clearTimeout(view.timer);
  if (!$('#auto-refresh').checked) return;
  const seconds = view.snapshot && view.snapshot.intervalSec ? Math.min(view.snapshot.intervalSec, 30) : 5;
  view.timer = setTimeout(refresh, seconds * 1000);
}

window.addEventListener('scroll', onScroll, { passive: true });
window.addEventListener('resize', onScroll);
$('#state-filter').addEventListener('change', render);
$('#name-filter').addEventListener('input', render);
$('#auto-refresh').addEventListener('change', () => (($('#auto-refresh').checked ? refresh() : clearTimeout(view.timer))));
document.querySelector('#fleet thead').addEventListener('click', (event) => {
  const th = event.target.closest('th[data-sort]');
  if (!th) return;
  if (view.sort === th.dataset.sort) view.descending = !view.descending;
  else { view.sort = th.dataset.sort; view.descending = th.dataset.sort !== 'client'; }
  render();
});
$('#fleet tbody').addEventListener('click', (event) => {
  const tr = event.target.closest('tr[data-client]');
  if (!tr) return;
  // Only the highlight and the panel change: re-rendering a thousand rows for a click is wasted.
  document.querySelector('#fleet tbody tr.selected')?.classList.remove('selected');
  tr.classList.add('selected');
  view.selected = tr.dataset.client;
  renderDetail();
});
$('#detail-close').addEventListener('click', () => {
  view.selected = null;
  $('#detail').hidden = true;
  document.body.classList.remove('detail-open');
  document.querySelector('#fleet tbody tr.selected')?.classList.remove('selected');
});
void refresh();
