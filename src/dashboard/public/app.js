// @ts-check
/**
 * The dashboard page: sign-in with a key (kept in sessionStorage, sent as a Bearer header), then
 * the admin view (every key: charts over the range, the keys table with Disable / Enable, the
 * gateway's limits, the breakdown by model) or the key-holder view (the same for one's own key,
 * with its limits). Everything it shows comes from /dashboard/api, read again every 30 s.
 */
import { api, ApiFailure, forgetKey, storedKey, storeKey } from './api.js';
import { destroyCharts, drawChart } from './charts.js';
import { amount, count, money } from './format.js';
import { clear, renderAdminKeys, renderLimits, renderModels, renderOwnKey, renderTotals } from './views.js';

/** @param {string} id @returns {HTMLElement} */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** Lines per chart beyond the total: the keys with the most calls; the rest are in the total only. */
const MAX_KEY_LINES = 8;

/** How often the signed-in view refreshes itself (the Refresh button reads at once). */
const REFRESH_MS = 30_000;

const state = { range: '24h', /** @type {any} */ session: null, loading: 0 };

function show(signedIn) {
  $('sign-in').hidden = signedIn;
  $('board').hidden = !signedIn;
  $('ranges').hidden = !signedIn;
  $('sign-out').hidden = !signedIn;
  $('refresh').hidden = !signedIn;
}

/** @param {string} text @param {boolean} [error] */
function status(text, error = false) {
  const node = $('status');
  node.textContent = text;
  node.classList.toggle('error', error);
}

function signOut(message = '') {
  forgetKey();
  state.session = null;
  destroyCharts();
  for (const id of ['totals', 'keys-table', 'gateway-limits', 'models-table']) clear($(id));
  $('who').textContent = '';
  $('sign-in-error').textContent = message;
  show(false);
  document.body.dataset.view = 'signed-out';
  ($('key-input')).focus();
}

/** A failure of an API call: a key no longer accepted signs out; anything else is shown. */
function failed(err) {
  if (err instanceof ApiFailure && err.status === 401) return signOut(err.message);
  status(err instanceof Error ? err.message : String(err), true);
}

/** @param {any} overview */
function drawCharts(overview) {
  const ts = overview.timestamps;
  const admin = state.session.role === 'admin';
  const keys = admin ? overview.by_key.slice(0, MAX_KEY_LINES) : [];
  /** @param {'requests' | 'tokens' | 'usd'} field */
  const perKey = (field) => [
    { label: admin ? 'All keys' : 'Your key', values: overview.total.series[field], color: '#0f172a', width: 2.5 },
    ...keys.map((k) => ({ label: k.name, values: k.series[field] })),
  ];
  drawChart($('chart-requests'), ts, perKey('requests'), count, { integer: true });
  drawChart($('chart-tokens'), ts, perKey('tokens'), count, { integer: true });
  drawChart($('chart-usd'), ts, perKey('usd'), (v) => money(v));
  drawChart(
    $('chart-errors'),
    ts,
    [
      { label: '429s', values: overview.total.series.rate_limited, color: '#ea580c' },
      { label: 'Upstream errors', values: overview.total.series.upstream_errors, color: '#dc2626' },
    ],
    count,
    { integer: true },
  );
  drawChart(
    $('chart-latency'),
    ts,
    [
      { label: 'p50', values: overview.total.series.latency_p50_ms, color: '#16a34a' },
      { label: 'p95', values: overview.total.series.latency_p95_ms, color: '#ca8a04' },
      { label: 'p99', values: overview.total.series.latency_p99_ms, color: '#dc2626' },
    ],
    amount,
    { points: true },
  );
}

/** @param {any} row @param {boolean} disable */
async function toggleKey(row, disable) {
  try {
    const updated = await api(`keys/${encodeURIComponent(row.id)}/${disable ? 'disable' : 'enable'}`, { method: 'POST' });
    status(`${updated.name}: ${disable ? 'disabled, its next call is refused' : 'enabled again'}.`);
    await loadKeys();
  } catch (err) {
    failed(err);
  }
}

async function loadKeys() {
  const keys = await api('keys');
  if (state.session.role === 'admin') {
    $('keys-title').textContent = `Keys (${keys.data.length})`;
    renderAdminKeys($('keys-table'), keys.data, (row, disable) => void toggleKey(row, disable));
    renderLimits($('gateway-limits'), keys.gateway_limits, 'None: the gateway has no limits of its own (PROXYGPT_HOURLY_RATE_LIMIT, …).');
  } else {
    const own = keys.data[0];
    $('keys-title').textContent = 'Your key and its limits';
    renderOwnKey($('keys-table'), own);
    const limits = $('keys-table').parentElement;
    let table = document.getElementById('own-limits');
    if (table === null) {
      table = document.createElement('table');
      table.id = 'own-limits';
      table.className = 'data';
      limits?.append(table);
    }
    renderLimits(table, own.limits, 'This key has no limits of its own.');
    renderLimits($('gateway-limits'), keys.gateway_limits, 'None.');
  }
}

async function load() {
  const ticket = ++state.loading;
  status('Loading…');
  try {
    const [overview] = await Promise.all([api(`overview?range=${state.range}`), loadKeys()]);
    if (ticket !== state.loading) return;
    renderTotals($('totals'), overview.total);
    drawCharts(overview);
    renderModels($('models-table'), overview.by_model);
    status(`Updated ${new Date().toLocaleTimeString()} · ${count(overview.total.requests)} requests in range`);
    document.body.dataset.loaded = state.range;
  } catch (err) {
    failed(err);
  }
}

/** Checks the stored key with the gateway and opens the view it may see. */
async function start() {
  try {
    state.session = await api('session');
  } catch (err) {
    if (err instanceof ApiFailure && (err.status === 401 || err.status === 403)) return signOut(err.message);
    return signOut(err instanceof Error ? err.message : String(err));
  }
  const who = state.session.role === 'admin' ? 'Signed in as admin' : `Signed in with key ${state.session.key.name}`;
  $('who').textContent = who;
  document.body.dataset.view = state.session.role;
  show(true);
  await load();
}

$('sign-in-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($('key-input'));
  const key = input.value.trim();
  input.value = '';
  if (key === '') return;
  storeKey(key);
  $('sign-in-error').textContent = '';
  void start();
});

$('sign-out').addEventListener('click', () => signOut());
// Live: the view reads itself again every REFRESH_MS while signed in and on screen.
setInterval(() => {
  if (state.session !== null && document.visibilityState === 'visible') void load();
}, REFRESH_MS);
$('refresh').addEventListener('click', () => void load());
for (const button of $('ranges').querySelectorAll('button')) {
  button.addEventListener('click', () => {
    state.range = button.dataset.range ?? '24h';
    for (const b of $('ranges').querySelectorAll('button')) b.setAttribute('aria-pressed', String(b === button));
    void load();
  });
}

if (storedKey() === null) signOut();
else void start();
