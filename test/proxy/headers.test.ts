/**
 * The header rules on their own (src/proxy/headers.ts): every name that must not cross in each
 * direction is dropped, one by one, so removing any entry from either list fails a test; every
 * other name crosses with its value intact (arrays joined with ", " going up, kept as arrays
 * coming down); undefined values are skipped; the upstream key is the only credential going up;
 * only the `x-ratelimit-` prefix (not a look-alike) is dropped coming down; a configured secret in
 * a value coming down is redacted, and a name holding one is dropped. Inputs are lower-case,
 * as node's parser and undici deliver them. The lists are written out here from the security
 * contract, not imported, so the test cannot agree with a wrong list.
 */
import { describe, expect, it } from 'vitest';
import { clientResponseHeaders as withRedactor, upstreamRequestHeaders } from '../../src/proxy/headers.js';
import { Redactor } from '../../src/redact.js';

const KEY = 'sk-upstream-unit-key';
const PROXY = 'proxy-unit-key-0123';
const REDACTOR = new Redactor([KEY, PROXY]);
const clientResponseHeaders = (headers: Parameters<typeof withRedactor>[0]) => withRedactor(headers, REDACTOR);

/** Must never go from the client to the upstream. */
const NOT_UP = [
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
  'accept-encoding',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
  'expect',
];

/** Must never come from the upstream down to the client. */
const NOT_DOWN = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'set-cookie', 'openai-organization', 'openai-project', 'alt-svc'];

describe('upstreamRequestHeaders', () => {
  it.each(NOT_UP)('drops the client header %s', (name) => {
    const out = upstreamRequestHeaders({ [name]: 'client-value', 'x-kept': 'kept' }, KEY);
    // In order: the upstream key is added after the client's headers, not in place of the client's.
    expect(Object.entries(out)).toStrictEqual([
      ['x-kept', 'kept'],
      ['authorization', `Bearer ${KEY}`],
    ]);
  });

  it('drops all of them at once and keeps the harmless ones, in the client order, with the upstream key last', () => {
    const client: Record<string, string> = {};
    for (const name of NOT_UP) client[name] = `client-${name}`;
    const out = upstreamRequestHeaders(
      { 'user-agent': 'ua/1', ...client, 'content-type': 'application/json', 'openai-beta': 'assistants=v2', 'x-custom': 'c', accept: 'text/event-stream' },
      KEY,
    );
    expect(Object.entries(out)).toStrictEqual([
      ['user-agent', 'ua/1'],
      ['content-type', 'application/json'],
      ['openai-beta', 'assistants=v2'],
      ['x-custom', 'c'],
      ['accept', 'text/event-stream'],
      ['authorization', `Bearer ${KEY}`],
    ]);
  });

  it('sends exactly Bearer <upstream key>, whatever the client sent as Authorization', () => {
    expect(upstreamRequestHeaders({ authorization: 'Bearer pgpt-client-proxy-key' }, KEY)).toStrictEqual({ authorization: `Bearer ${KEY}` });
    expect(upstreamRequestHeaders({}, 'sk-other')).toStrictEqual({ authorization: 'Bearer sk-other' });
  });

  it('joins array values with ", " and skips undefined values', () => {
    const out = upstreamRequestHeaders({ 'x-multi': ['a', 'b', 'c'], 'x-single': ['only'], 'x-missing': undefined, 'x-empty': '' }, KEY);
    expect(out).toStrictEqual({ 'x-multi': 'a, b, c', 'x-single': 'only', 'x-empty': '', authorization: `Bearer ${KEY}` });
    expect(Object.keys(out)).not.toContain('x-missing');
  });

  it('keeps look-alike names that are not on the list', () => {
    const names = ['x-api-key-id', 'api-keys', 'cookie2', 'x-cookie', 'openai-organization-name', 'x-host', 'content-type', 'content-length-hint', 'x-forwarded', 'x-authorization'];
    const client = Object.fromEntries(names.map((n) => [n, `v-${n}`]));
    expect(upstreamRequestHeaders(client, KEY)).toStrictEqual({ ...client, authorization: `Bearer ${KEY}` });
  });
});

describe('clientResponseHeaders', () => {
  it.each(NOT_DOWN)('drops the upstream header %s', (name) => {
    const out = clientResponseHeaders({ [name]: 'upstream-value', 'x-request-id': 'req_1' });
    expect(out).toStrictEqual({ 'x-request-id': 'req_1' });
  });

  it.each(['x-ratelimit-limit-requests', 'x-ratelimit-remaining-requests', 'x-ratelimit-reset-requests', 'x-ratelimit-limit-tokens', 'x-ratelimit-remaining-tokens', 'x-ratelimit-reset-tokens', 'x-ratelimit-'])(
    'drops the upstream rate-limit header %s (the gateway sets its own)',
    (name) => {
      expect(clientResponseHeaders({ [name]: '5', 'openai-processing-ms': '12' })).toStrictEqual({ 'openai-processing-ms': '12' });
    },
  );

  it('keeps names that only look like x-ratelimit-* or a listed name', () => {
    const upstream = {
      'x-ratelimit': '1',
      'x-ratelimitx-a': '2',
      'my-x-ratelimit-limit-requests': '3',
      'x-upstream-x-ratelimit-': '4',
      'set-cookie2': '5',
      'x-set-cookie': '6',
      'openai-organization-id': '7',
      'alt-svc-x': '8',
    };
    expect(clientResponseHeaders(upstream)).toStrictEqual(upstream);
  });

  it('passes harmless headers with their values intact, arrays as arrays, and skips undefined values', () => {
    const out = clientResponseHeaders({
      'content-type': 'application/json',
      'content-length': '42',
      'x-request-id': 'req_1',
      'openai-processing-ms': '123',
      'openai-version': '2020-10-01',
      'retry-after': '3',
      'x-multi': ['a', 'b'],
      'x-missing': undefined,
      'set-cookie': ['a=1', 'b=2'],
    });
    expect(out).toStrictEqual({
      'content-type': 'application/json',
      'content-length': '42',
      'x-request-id': 'req_1',
      'openai-processing-ms': '123',
      'openai-version': '2020-10-01',
      'retry-after': '3',
      'x-multi': ['a', 'b'],
    });
    expect(Object.keys(out)).not.toContain('x-missing');
  });

  it('drops every listed name at once', () => {
    const upstream: Record<string, string> = { 'x-request-id': 'req_1' };
    for (const name of NOT_DOWN) upstream[name] = `upstream-${name}`;
    upstream['x-ratelimit-limit-requests'] = '9';
    expect(clientResponseHeaders(upstream)).toStrictEqual({ 'x-request-id': 'req_1' });
  });

  it('redacts our secrets from every value, in strings and arrays, and drops a name holding one', () => {
    const out = clientResponseHeaders({
      'x-echo-authorization': `Bearer ${KEY}`,
      'www-authenticate': `Bearer realm="api", key="${KEY}", other="${PROXY}"`,
      'x-list': [`a ${PROXY}`, 'b', `${KEY}${KEY}`],
      [`x-${PROXY}`]: 'named after a key',
      'x-request-id': 'req_1',
    });
    expect(out).toStrictEqual({
      'x-echo-authorization': 'Bearer [REDACTED]',
      'www-authenticate': 'Bearer realm="api", key="[REDACTED]", other="[REDACTED]"',
      'x-list': ['a [REDACTED]', 'b', '[REDACTED][REDACTED]'],
      'x-request-id': 'req_1',
    });
  });

  it('leaves what only looks like a key alone (it is not ours)', () => {
    const upstream = { 'www-authenticate': 'Bearer realm="api"', 'x-note': 'sk-somebody-elses-key-000 pgpt-not-ours-000000' };
    expect(clientResponseHeaders(upstream)).toStrictEqual(upstream);
  });
});
