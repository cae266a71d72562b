// @ts-check
/** Number, money, duration and time formatting for the dashboard (all as plain strings). */

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });

/** @param {number} n */
export const count = (n) => integer.format(n);

/** @param {number} n */
export const amount = (n) => decimal.format(n);

/** @param {number} usd */
export function money(usd) {
  if (usd === 0) return '$0';
  if (Math.abs(usd) < 1) return `$${Number(usd.toPrecision(3))}`;
  return `$${usd.toFixed(2)}`;
}

/** @param {number | null} ms */
export function millis(ms) {
  if (ms === null) return '–';
  return ms >= 1000 ? `≤ ${decimal.format(ms / 1000)} s` : `≤ ${integer.format(ms)} ms`;
}

/** @param {number} seconds */
export function duration(seconds) {
  if (seconds <= 0) return 'now';
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return minutes % 60 === 0 ? `${hours}h` : `${hours}h ${minutes % 60}m`;
  const days = Math.floor(hours / 24);
  return hours % 24 === 0 ? `${days}d` : `${days}d ${hours % 24}h`;
}

/** @param {string | null} iso */
export function time(iso) {
  if (iso === null) return '–';
  const d = new Date(iso);
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** @param {string | null} iso @param {number} now */
export function ago(iso, now) {
  if (iso === null) return 'never';
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  if (seconds < 5) return 'just now';
  return `${duration(seconds)} ago`;
}

/** A limit's amount in its unit. @param {number} n @param {string} unit */
export function inUnit(n, unit) {
  return unit === 'usd' ? money(n) : count(n);
}

/** `requests_per_hour` → `requests per hour`. @param {string} name */
export const limitName = (name) => name.replace(/_/g, ' ');
