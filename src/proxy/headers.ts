/**
 * Header hygiene between client, gateway and upstream: what crosses in each direction. The
 * client's credentials never go up; hop-by-hop headers and the upstream account's details never
 * come back down, nor any of our secrets an upstream echoes in a header (the Authorization it
 * got, in `www-authenticate` or an `x-echo-*`): redacted from every value, and a header named
 * after one is dropped.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Redactor } from '../redact.js';

const NOT_FORWARDED_UP = new Set([
  'host',
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'content-length',
  'authorization',
  'api-key',
  'x-api-key',
  'cookie',
  'openai-organization',
  'openai-project',
  'accept-encoding', // the gateway reads usage from bodies: ask for identity encoding
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
  'expect',
]);

const NOT_FORWARDED_DOWN = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'set-cookie',
  'openai-organization',
  'openai-project',
  'alt-svc',
]);

/** How an upstream takes its key: OpenAI's `Authorization: Bearer`, or Azure OpenAI's `api-key`. */
export type CredentialStyle = 'bearer' | 'api-key';

/**
 * Client request headers to send upstream, with the upstream key as the only credential (none
 * for a server that takes no key).
 */
export function upstreamRequestHeaders(client: IncomingHttpHeaders, upstreamKey: string | null, style: CredentialStyle = 'bearer'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in client) {
    if (NOT_FORWARDED_UP.has(name)) continue;
    const value = client[name];
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  if (upstreamKey !== null) {
    if (style === 'api-key') out['api-key'] = upstreamKey;
    else out.authorization = `Bearer ${upstreamKey}`;
  }
  return out;
}

/**
 * Upstream response headers to pass to the client (the gateway sets its own x-ratelimit-*), with
 * the configured secrets redacted.
 */
export function clientResponseHeaders(
  upstreamHeaders: Record<string, string | string[] | undefined>,
  redactor: Pick<Redactor, 'hasSecret' | 'secretsOnly'>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in upstreamHeaders) {
    if (NOT_FORWARDED_DOWN.has(name) || name.startsWith('x-ratelimit-') || redactor.hasSecret(name)) continue;
    const value = upstreamHeaders[name];
    if (value === undefined) continue;
    out[name] = typeof value === 'string' ? redactor.secretsOnly(value) : value.map((v) => redactor.secretsOnly(v));
  }
  return out;
}
