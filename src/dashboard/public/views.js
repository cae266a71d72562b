// @ts-check
/**
 * The dashboard's tables and cards, built with createElement and textContent only: whatever the
 * data holds (a key's notes, a model name a client chose) is shown as text, never parsed as HTML.
 */
import { ago, count, duration, inUnit, limitName, millis, money, time } from './format.js';

/**
 * An element with text or children; attributes set one by one (never markup).
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {Array<Node | string> | string} [content]
 * @returns {HTMLElement}
 */
export function el(tag, attrs = {}, content = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (typeof content === 'string') node.textContent = content;
  else for (const child of content) node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  return node;
}

/** @param {HTMLElement} node */
export function clear(node) {
  node.replaceChildren();
}

/**
 * Fills `table` with a header row and one row per item.
 * @param {HTMLElement} table
 * @param {string[]} headings
 * @param {Array<Array<Node | string>>} rows
 * @param {string} empty what to say without rows
 */
function fillTable(table, headings, rows, empty) {
  clear(table);
  table.append(el('thead', {}, [el('tr', {}, headings.map((h) => el('th', { scope: 'col' }, h)))]));
  const body = el('tbody');
  if (rows.length === 0) body.append(el('tr', {}, [el('td', { colspan: String(headings.length), class: 'empty' }, empty)]));
  for (const cells of rows) body.append(el('tr', {}, cells.map((c) => el('td', {}, [c]))));
  table.append(body);
}

/** @param {HTMLElement} node @param {any} totals the overview's `total` */
export function renderTotals(node, totals) {
  const card = (label, value, detail = '') => el('div', { class: 'card' }, [el('div', { class: 'card-label' }, label), el('div', { class: 'card-value' }, value), el('div', { class: 'card-detail' }, detail)]);
  clear(node);
  node.append(
    card('Requests', count(totals.requests)),
    card('Tokens', count(totals.total_tokens), `${count(totals.prompt_tokens)} prompt · ${count(totals.completion_tokens)} completion`),
    card('Cost', money(totals.usd)),
    card('429s', count(totals.rate_limited)),
    card('Upstream errors', count(totals.upstream_errors)),
    card('Latency p50 / p95 / p99', `${millis(totals.latency_ms.p50)}`, `p95 ${millis(totals.latency_ms.p95)} · p99 ${millis(totals.latency_ms.p99)}`),
  );
}

/**
 * One limit as a line: "requests per hour: 3 of 10 used, 7 left, resets in 12m".
 * @param {any} limit
 */
function limitLine(limit) {
  const resets = limit.reset_seconds > 0 ? `, resets in ${duration(limit.reset_seconds)}` : '';
  return el('li', {}, [el('span', { class: 'limit-name' }, limitName(limit.name)), `: ${inUnit(limit.used, limit.unit)} of ${inUnit(limit.limit, limit.unit)} used, ${inUnit(limit.remaining, limit.unit)} left${resets}`]);
}

/** @param {any[]} limits */
function limitList(limits) {
  if (limits.length === 0) return el('span', { class: 'muted' }, 'none of its own');
  return el('ul', { class: 'limits' }, limits.map(limitLine));
}

/** @param {string} status */
const badge = (status) => el('span', { class: `badge badge-${status}` }, status);

/**
 * The admin's keys table: one row per key, a Disable / Enable button per stored key.
 * @param {HTMLElement} table
 * @param {any[]} rows
 * @param {(row: any, disable: boolean) => void} onToggle
 */
export function renderAdminKeys(table, rows, onToggle) {
  const now = Date.now();
  fillTable(
    table,
    ['Name', 'Notes', 'Status', 'Limits (used, remaining, reset)', 'Expires', 'Last used', ''],
    rows.map((row) => {
      let action;
      if (row.source === 'env') action = el('span', { class: 'muted' }, 'environment key');
      else {
        const disable = !row.disabled;
        action = el('button', { type: 'button', class: disable ? 'danger' : 'secondary', 'data-key-id': row.id }, disable ? 'Disable' : 'Enable');
        action.addEventListener('click', () => onToggle(row, disable));
      }
      return [
        el('div', {}, [el('div', { class: 'key-name' }, row.name), el('div', { class: 'muted small' }, row.prefix === null ? row.id : `${row.id} · ${row.prefix}`)]),
        el('div', { class: 'notes' }, row.notes ?? ''),
        badge(row.status),
        limitList(row.limits),
        time(row.expires_at),
        el('span', { title: time(row.last_used) }, ago(row.last_used, now)),
        action,
      ];
    }),
    'No keys yet: create one with the admin API or `proxygpt keys create`.',
  );
}

/**
 * A key holder's own key: a row about the key, then one row per limit.
 * @param {HTMLElement} table
 * @param {any} row
 */
export function renderOwnKey(table, row) {
  const now = Date.now();
  fillTable(
    table,
    ['Key', 'Status', 'Expires', 'Last used'],
    [[el('div', {}, [el('div', { class: 'key-name' }, row.name), el('div', { class: 'muted small' }, row.id)]), badge(row.status), time(row.expires_at), ago(row.last_used, now)]],
    '',
  );
}

/**
 * Limits as a table (limit, used, remaining, resets in).
 * @param {HTMLElement} table
 * @param {any[]} limits
 * @param {string} empty
 */
export function renderLimits(table, limits, empty) {
  fillTable(
    table,
    ['Limit', 'Allowed', 'Used', 'Remaining', 'Resets in'],
    limits.map((l) => [limitName(l.name), inUnit(l.limit, l.unit), inUnit(l.used, l.unit), inUnit(l.remaining, l.unit), l.reset_seconds > 0 ? duration(l.reset_seconds) : '–']),
    empty,
  );
}

/**
 * The breakdown by model (names as the clients sent them).
 * @param {HTMLElement} table
 * @param {any[]} models
 */
export function renderModels(table, models) {
  fillTable(
    table,
    ['Model', 'Requests', 'Prompt tokens', 'Completion tokens', 'Cost', '429s', 'Upstream errors', 'p95 latency'],
    models.map((m) => [
      m.model === null ? el('span', { class: 'muted' }, '(no model)') : el('span', { class: 'model-name' }, m.model),
      count(m.requests),
      count(m.prompt_tokens),
      count(m.completion_tokens),
      money(m.usd),
      count(m.rate_limited),
      count(m.upstream_errors),
      millis(m.latency_ms.p95),
    ]),
    'No calls in this range.',
  );
}

