// @ts-check
/**
 * The dashboard's talk with the gateway: the signed-in key lives in this tab's sessionStorage
 * only (never in a URL, never in a cookie) and goes to the JSON API as `Authorization: Bearer`.
 */

const STORAGE_KEY = 'proxygpt.dashboard.key';

export function storedKey() {
  return sessionStorage.getItem(STORAGE_KEY);
}

/** @param {string} key */
export function storeKey(key) {
  sessionStorage.setItem(STORAGE_KEY, key);
}

export function forgetKey() {
  sessionStorage.removeItem(STORAGE_KEY);
}

/** An answer of the API that was not 2xx: its status and the message of its OpenAI-style error. */
export class ApiFailure extends Error {
  /** @param {number} status @param {string} message */
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/**
 * Calls /dashboard/api/<path> with the stored key.
 * @param {string} path e.g. `overview?range=24h`
 * @param {{ method?: string }} [options]
 * @returns {Promise<any>}
 */
export async function api(path, options = {}) {
  const key = storedKey();
  if (key === null) throw new ApiFailure(401, 'Not signed in.');
  const res = await fetch(`/dashboard/api/${path}`, {
    method: options.method ?? 'GET',
    headers: { authorization: `Bearer ${key}` },
    cache: 'no-store',
    credentials: 'omit',
    referrerPolicy: 'no-referrer',
  });
  const text = await res.text();
  /** @type {any} */
  let body = null;
  try {
    body = text === '' ? null : JSON.parse(text);
  } catch {
    body = null;
  }
  if (!res.ok) throw new ApiFailure(res.status, body?.error?.message ?? `HTTP ${res.status}`);
  return body;
}
