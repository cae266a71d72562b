/**
 * Remote mode: the admin API of a running server (`--url`), authenticated with the admin key.
 * Answers are passed on exactly as the server sent them. The admin key goes only into the
 * Authorization header of requests to that server: never into a message, and never along a
 * redirect.
 */
import type { KeyView, UsageView } from '../keys/service.js';
import type { AdminBackend, KeyBody, KeyList, KeyWithSecret, PriceInput, PriceList, PriceSet, UsageQuery } from './backend.js';
import { CliError, usageError } from './errors.js';

const TIMEOUT_MS = 60_000;

/** `http://host:port`, optionally with a path prefix (behind a reverse proxy); a trailing /admin is dropped. */
export function parseServerUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw usageError(`--url must be the server's address, like http://127.0.0.1:8000 (got ${JSON.stringify(text)})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usageError(`--url must be an http:// or https:// address (got ${JSON.stringify(url.protocol)})`);
  if (url.username || url.password) throw usageError('--url must not contain credentials; give the admin key with --admin-key or PROXYGPT_ADMIN_KEY');
  url.pathname = url.pathname.replace(/\/+$/, '').replace(/\/admin$/, '');
  url.search = '';
  url.hash = '';
  return url;
}

function reason(err: unknown): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return `no answer within ${TIMEOUT_MS / 1000} s`;
  const cause = err instanceof Error ? (err.cause as { message?: unknown; code?: unknown } | undefined) : undefined;
  if (cause !== undefined && typeof cause.message === 'string' && cause.message !== '') return cause.message;
  if (cause !== undefined && typeof cause.code === 'string') return cause.code;
  return err instanceof Error ? err.message : String(err);
}

export class RemoteBackend implements AdminBackend {
  private readonly origin: string;

  constructor(
    base: URL,
    private readonly adminKey: string,
  ) {
    this.origin = base.origin + base.pathname.replace(/\/+$/, '');
  }

  private async call<T>(method: string, path: string, options: { body?: unknown; query?: Record<string, string | undefined> } = {}): Promise<T> {
    const url = new URL(`${this.origin}/admin${path}`);
    for (const [name, value] of Object.entries(options.query ?? {})) if (value !== undefined) url.searchParams.set(name, value);
    const headers: Record<string, string> = { authorization: `Bearer ${this.adminKey}`, accept: 'application/json' };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        redirect: 'manual',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (err) {
      throw new CliError(`could not reach ${this.origin}: ${reason(err)}`);
    }
    let text: string;
    try {
      text = await response.text();
    } catch (err) {
      throw new CliError(`could not read the answer of ${this.origin}: ${reason(err)}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (response.status >= 300 && response.status < 400) {
      const location = response.headers.get('location');
      throw new CliError(`${this.origin} answered with a redirect (HTTP ${response.status}${location ? ` to ${location}` : ''}); give that address with --url`);
    }
    if (!response.ok) {
      const message = (json as { error?: { message?: unknown } } | undefined)?.error?.message;
      const text = typeof message === 'string' ? message : `HTTP ${response.status} ${response.statusText}`.trim();
      if (response.status === 401) throw new CliError(`${this.origin} refused the admin key (HTTP 401): check --admin-key or PROXYGPT_ADMIN_KEY`);
      if (response.status === 404 && (typeof message !== 'string' || message.startsWith('No route for'))) {
        throw new CliError(`${this.origin} has no admin API (HTTP 404): is it a ProxyGPT server with PROXYGPT_ADMIN_KEY set?`);
      }
      throw new CliError(text);
    }
    if (json === undefined) throw new CliError(`${this.origin} did not answer with JSON (HTTP ${response.status}): is it a ProxyGPT server?`);
    return json as T;
  }

  private static keyPath(key: string): string {
    return `/keys/${encodeURIComponent(key)}`;
  }

  createKey(body: KeyBody) {
    return this.call<KeyWithSecret>('POST', '/keys', { body });
  }

  listKeys() {
    return this.call<KeyList>('GET', '/keys');
  }

  showKey(key: string) {
    return this.call<KeyView>('GET', RemoteBackend.keyPath(key));
  }

  updateKey(key: string, body: KeyBody) {
    return this.call<KeyView>('PATCH', RemoteBackend.keyPath(key), { body });
  }

  rotateKey(key: string) {
    return this.call<KeyWithSecret>('POST', `${RemoteBackend.keyPath(key)}/rotate`);
  }

  revokeKey(key: string) {
    return this.call<KeyView>('POST', `${RemoteBackend.keyPath(key)}/revoke`);
  }

  deleteKey(key: string) {
    return this.call<{ id: string; deleted: true }>('DELETE', RemoteBackend.keyPath(key));
  }

  usage(query: UsageQuery) {
    return this.call<UsageView>('GET', '/usage', { query: { key: query.key, since: query.since, until: query.until, upstream: query.upstream } });
  }

  prices() {
    return this.call<PriceList>('GET', '/prices');
  }

  setPrice(model: string, price: PriceInput) {
    return this.call<PriceSet>('PUT', `/prices/${encodeURIComponent(model)}`, { body: price });
  }

  unsetPrice(model: string) {
    return this.call<{ model: string; deleted: true }>('DELETE', `/prices/${encodeURIComponent(model)}`);
  }

  async close(): Promise<void> {}
}
