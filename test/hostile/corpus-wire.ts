/**
 * Corpus rows about the wire: headers (CRLF, NUL, control characters, sizes), credentials,
 * request paths (every traversal spelling), framing, protocol oddities, the gateway's own routes
 * and clients that stall.
 */
import { MAX_JSON_DEPTH } from '../../src/http/request-input.js';
import { CHAT, chat, chunked, gateway, type HostileRequest, objects, raw, rawGet, upstream } from './corpus-kit.js';

export const headers: HostileRequest[] = [
  { name: 'CRLF then a line without a colon (header injection)', category: 'headers', key: 'env', raw: raw('POST', CHAT, chat(), 'X-Note: a\r\nInjected line\r\n'), expect: gateway(400, 'bad_request') },
  { name: 'a bare CR in a header value', category: 'headers', key: 'env', raw: raw('POST', CHAT, chat(), 'X-Note: a\rb\r\n'), expect: gateway(400, 'bad_request') },
  { name: 'a bare LF ending a header line', category: 'headers', key: 'env', raw: raw('POST', CHAT, chat(), 'X-Note: a\nX-Other: b\r\n'), expect: gateway(400, 'bad_request') },
  { name: 'a NUL byte in a header value', category: 'headers', key: 'env', raw: raw('POST', CHAT, chat(), 'X-Note: a\x00b\r\n'), expect: gateway(400, 'bad_request') },
  { name: 'a NUL byte in the Authorization value', category: 'headers', key: 'env', raw: raw('POST', CHAT, chat()).replace('{{AUTH}}', 'Authorization: Bearer {{KEY}}\x00\r\n'), expect: gateway(400, 'bad_request') },
  { name: 'control characters in a header value', category: 'headers', key: 'env', raw: rawGet('/healthz', 'X-Junk: a\x01\x7fb\r\n'), expect: gateway(400, 'bad_request') },
  { name: 'a header name with a space', category: 'headers', key: 'env', raw: rawGet('/healthz', 'Bad Header: 1\r\n'), expect: gateway(400, 'bad_request') },
  { name: 'a folded header line (obs-fold)', category: 'headers', key: 'env', raw: raw('POST', CHAT, chat(), 'X-Note: a\r\n folded\r\n'), expect: gateway(400, 'bad_request') },
  { name: 'headers over 16 KiB', category: 'headers', key: 'env', raw: rawGet('/healthz', `X-Big: ${'a'.repeat(20 * 1024)}\r\n`), expect: gateway(431, 'headers_too_large') },
  { name: 'a 20 KiB request line', category: 'headers', key: 'env', raw: rawGet(`/v1/models/${'m'.repeat(20 * 1024)}`), expect: gateway(431, 'headers_too_large') },
  { name: 'Latin-1 bytes in a header value are passed on', category: 'headers', key: 'env', raw: raw('POST', CHAT, chat(), 'X-Name: caf\xe9\r\n'), expect: upstream() },
  { name: 'spoofed X-Forwarded-For is not trusted, the call passes', category: 'headers', key: 'stored', headers: { 'x-forwarded-for': '10.0.0.1, ::1' }, body: chat(), expect: upstream() },
  // RFC 9112 asks for a 400 here; the README does not, Node keeps the first copy, and the gateway
  // never uses Host (nor sends it upstream): served, and noted in the report.
  { name: 'two Host headers are served (Host is not used)', category: 'headers', key: 'env', raw: raw('POST', CHAT, chat(), 'Host: evil.example\r\n'), expect: upstream() },
];

export const auth: HostileRequest[] = [
  { name: 'no key', category: 'auth', key: 'none', body: chat(), expect: gateway(401, 'invalid_api_key') },
  { name: 'no key and invalid JSON: 401 first', category: 'auth', key: 'none', body: '{"model":', expect: gateway(401, 'invalid_api_key') },
  { name: 'a wrong pgpt- key', category: 'auth', key: 'none', headers: { authorization: 'Bearer pgpt-not-a-real-key-000000000000' }, body: chat(), expect: gateway(401, 'invalid_api_key') },
  { name: 'Basic credentials', category: 'auth', key: 'none', headers: { authorization: 'Basic dXNlcjpwYXNz' }, body: chat(), expect: gateway(401, 'invalid_api_key') },
  { name: 'Bearer without a token', category: 'auth', key: 'none', headers: { authorization: 'Bearer' }, body: chat(), expect: gateway(401, 'invalid_api_key') },
  { name: 'the key with a trailing word', category: 'auth', key: 'env', raw: raw('POST', CHAT, chat()).replace('{{AUTH}}', 'Authorization: Bearer {{KEY}} extra\r\n'), expect: gateway(401, 'invalid_api_key') },
  { name: 'the key only as x-api-key', category: 'auth', key: 'env', raw: raw('POST', CHAT, chat()).replace('{{AUTH}}', 'X-Api-Key: {{KEY}}\r\n'), expect: gateway(401, 'invalid_api_key') },
  { name: 'the scheme in lower case passes', category: 'auth', key: 'env', raw: raw('POST', CHAT, chat()).replace('{{AUTH}}', 'authorization: bearer {{KEY}}\r\n'), expect: upstream() },
  { name: 'a wrong key first, the right one second', category: 'auth', key: 'env', raw: raw('POST', CHAT, chat()).replace('{{AUTH}}', 'Authorization: Bearer pgpt-wrong-key-0000000000000000\r\n{{AUTH}}'), expect: gateway(401, 'invalid_api_key') },
  { name: 'the right key first, a wrong one second', category: 'auth', key: 'env', raw: raw('POST', CHAT, chat()).replace('{{AUTH}}', '{{AUTH}}Authorization: Bearer pgpt-wrong-key-0000000000000000\r\n'), expect: gateway(401, 'invalid_api_key') },
  { name: 'the stored key first, an env key second', category: 'auth', key: 'stored', raw: raw('POST', CHAT, chat()).replace('{{AUTH}}', '{{AUTH}}Authorization: Bearer {{ENV_KEY}}\r\n'), expect: gateway(401, 'invalid_api_key') },
  { name: 'the admin key twice on the admin API', category: 'auth', key: 'admin', raw: rawGet('/admin/keys').replace('{{AUTH}}', '{{AUTH}}{{AUTH}}'), expect: gateway(401, 'invalid_api_key') },
  { name: 'the same env key twice', category: 'auth', key: 'env', raw: raw('POST', CHAT, chat()).replace('{{AUTH}}', '{{AUTH}}{{AUTH}}'), expect: gateway(401, 'invalid_api_key') },
  { name: 'a proxy key on the admin API', category: 'auth', key: 'env', method: 'GET', path: '/admin/keys', expect: gateway(401, 'invalid_api_key') },
  { name: 'the admin key on /v1', category: 'auth', key: 'admin', body: chat(), expect: gateway(401, 'invalid_api_key') },
  { name: 'no key on /ratelimit', category: 'auth', key: 'none', method: 'GET', path: '/ratelimit', expect: gateway(401, 'invalid_api_key') },
];

export const paths: HostileRequest[] = [
  ...(
    [
      ['dot segments', '/v1/../ratelimit'],
      ['dot segments under an allowed route', '/v1/chat/completions/../../models'],
      ['a single dot segment', '/v1/./chat/completions'],
      ['encoded dots', '/v1/%2e%2e/ratelimit'],
      ['upper-case encoded dots', '/v1/%2E%2E/ratelimit'],
      ['half-encoded dots', '/v1/.%2e/ratelimit'],
      ['double-encoded dots', '/v1/%252e%252e/ratelimit'],
      ['triple-encoded dots', '/v1/%25252e%25252e/ratelimit'],
      ['five times encoded dots', '/v1/%252525252e%252525252e/ratelimit'],
      ['an encoded slash with dots', '/v1/chat%2f..%2f..%2fratelimit'],
      ['backslashes', '/v1\\..\\ratelimit'],
      ['an encoded backslash', '/v1/%5c..%5cratelimit'],
      ['overlong UTF-8 dots (%c0%ae)', '/v1/%c0%ae%c0%ae/ratelimit'],
      ['overlong UTF-8 slash (%c0%af)', '/v1/models%c0%af..%c0%af..%c0%afratelimit'],
      ['three-byte overlong dots (%e0%80%ae)', '/v1/%e0%80%ae%e0%80%ae/ratelimit'],
      ['an encoded NUL', '/v1/chat/completions%00'],
      ['malformed percent-encoding', '/v1/%zz'],
      ['an empty segment', '/v1//chat/completions'],
      ['a path not starting with /', 'v1/chat/completions'],
      ['the absolute form', 'http://127.0.0.1/v1/../ratelimit'],
      ['dots on the models prefix', '/v1/models/..'],
      ['encoded dots on the models prefix', '/v1/models/%2e%2e'],
    ] as const
  ).map(([what, target]): HostileRequest => ({ name: `a path with ${what}`, category: 'paths', key: 'env', raw: rawGet(target), expect: gateway(400) })),
  { name: 'dots in a POST with a body', category: 'paths', key: 'env', raw: raw('POST', '/v1/chat/completions/../completions', chat()), expect: gateway(400, 'invalid_path') },
  { name: 'dots without a key: still refused', category: 'paths', key: 'none', raw: rawGet('/v1/%2e%2e/admin/keys'), expect: gateway(400, 'invalid_path') },
  { name: 'a raw NUL in the path', category: 'paths', key: 'env', raw: rawGet('/v1/chat\x00/completions'), expect: gateway(400) },
  { name: 'a raw space in the path', category: 'paths', key: 'env', raw: rawGet('/v1/models /x'), expect: gateway(400) },
  { name: 'fullwidth dots next to real ones: the real ones count', category: 'paths', key: 'env', raw: rawGet('/v1/models/%ef%bc%8e%ef%bc%8e/../x'), expect: gateway(400, 'invalid_path') },
  { name: 'fullwidth dots alone: 403 (no such endpoint)', category: 'paths', key: 'env', raw: rawGet('/v1/%ef%bc%8e%ef%bc%8e/ratelimit'), expect: gateway(403, 'endpoint_not_allowed') },
  { name: 'a trailing slash is another endpoint', category: 'paths', key: 'env', raw: raw('POST', '/v1/chat/completions/', chat()), expect: gateway(403, 'endpoint_not_allowed') },
  { name: 'a semicolon suffix is another endpoint', category: 'paths', key: 'env', raw: raw('POST', '/v1/chat/completions;x=1', chat()), expect: gateway(403, 'endpoint_not_allowed') },
  { name: 'an encoded letter is another endpoint', category: 'paths', key: 'env', raw: raw('POST', '/v1/chat/c%6fmpletions', chat()), expect: gateway(403, 'endpoint_not_allowed') },
  { name: 'upper case is another endpoint', category: 'paths', key: 'env', raw: raw('POST', '/V1/CHAT/COMPLETIONS', chat()), expect: gateway(404, 'not_found') },
  { name: 'dots in the query string are no path', category: 'paths', key: 'env', raw: raw('POST', '/v1/chat/completions?next=../../admin', chat()), expect: upstream() },
  { name: 'a model id with an encoded slash', category: 'paths', key: 'env', raw: rawGet('/v1/models/gpt-4o%2fmini'), expect: upstream() },
  { name: 'the models prefix itself is not below it', category: 'paths', key: 'stored', raw: rawGet('/v1/models/'), expect: gateway(403, 'endpoint_not_allowed') },
];

export const framing: HostileRequest[] = [
  { name: 'Content-Length and Transfer-Encoding both', category: 'framing', key: 'env', raw: `POST ${CHAT} HTTP/1.1\r\nHost: x\r\n{{AUTH}}Content-Type: application/json\r\nContent-Length: ${chat().length}\r\nTransfer-Encoding: chunked\r\n\r\n${chunked([chat()])}`, expect: gateway(400, 'bad_request') },
  { name: 'two different Content-Lengths', category: 'framing', key: 'env', raw: `POST ${CHAT} HTTP/1.1\r\nHost: x\r\n{{AUTH}}Content-Type: application/json\r\nContent-Length: ${chat().length}\r\nContent-Length: 5\r\nConnection: close\r\n\r\n${chat()}`, expect: gateway(400, 'bad_request') },
  { name: 'two equal Content-Lengths', category: 'framing', key: 'env', raw: `POST ${CHAT} HTTP/1.1\r\nHost: x\r\n{{AUTH}}Content-Type: application/json\r\nContent-Length: ${chat().length}\r\nContent-Length: ${chat().length}\r\nConnection: close\r\n\r\n${chat()}`, expect: gateway(400, 'bad_request') },
  { name: 'a Content-Length with a list', category: 'framing', key: 'env', raw: `POST ${CHAT} HTTP/1.1\r\nHost: x\r\n{{AUTH}}Content-Type: application/json\r\nContent-Length: ${chat().length}, ${chat().length}\r\nConnection: close\r\n\r\n${chat()}`, expect: gateway(400, 'bad_request') },
  { name: 'a negative Content-Length', category: 'framing', key: 'env', raw: `POST ${CHAT} HTTP/1.1\r\nHost: x\r\n{{AUTH}}Content-Type: application/json\r\nContent-Length: -1\r\nConnection: close\r\n\r\n${chat()}`, expect: gateway(400, 'bad_request') },
  { name: 'a hex Content-Length', category: 'framing', key: 'env', raw: `POST ${CHAT} HTTP/1.1\r\nHost: x\r\n{{AUTH}}Content-Type: application/json\r\nContent-Length: 0x10\r\nConnection: close\r\n\r\n${chat()}`, expect: gateway(400, 'bad_request') },
  { name: 'a bad chunk size', category: 'framing', key: 'env', raw: `POST ${CHAT} HTTP/1.1\r\nHost: x\r\n{{AUTH}}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n${chat()}\r\n0\r\n\r\n`, expect: gateway(400, 'bad_request') },
  { name: 'a chunk size past 2^64', category: 'framing', key: 'env', raw: `POST ${CHAT} HTTP/1.1\r\nHost: x\r\n{{AUTH}}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nffffffffffffffffff\r\n${chat()}\r\n0\r\n\r\n`, expect: gateway(400, 'bad_request') },
  { name: 'chunked not last in Transfer-Encoding', category: 'framing', key: 'env', raw: `POST ${CHAT} HTTP/1.1\r\nHost: x\r\n{{AUTH}}Content-Type: application/json\r\nTransfer-Encoding: chunked, identity\r\nConnection: close\r\n\r\n${chunked([chat()])}`, expect: gateway(400, 'bad_request') },
  { name: 'an unknown Transfer-Encoding', category: 'framing', key: 'env', raw: `POST ${CHAT} HTTP/1.1\r\nHost: x\r\n{{AUTH}}Content-Type: application/json\r\nTransfer-Encoding: xchunked\r\nConnection: close\r\n\r\n${chunked([chat()])}`, expect: gateway(400, 'bad_request') },
  { name: 'chunked, with a chunk extension and a trailer, passes', category: 'framing', key: 'env', raw: `POST ${CHAT} HTTP/1.1\r\nHost: x\r\n{{AUTH}}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chat().length.toString(16)};ext=1\r\n${chat()}\r\n0\r\nX-Trailer: 1\r\n\r\n`, expect: upstream() },
  // The rest of the body reads as a next request that does not parse: whichever 400 comes first.
  { name: 'a Content-Length shorter than the body', category: 'framing', key: 'env', raw: `POST ${CHAT} HTTP/1.1\r\nHost: x\r\n{{AUTH}}Content-Type: application/json\r\nContent-Length: 20\r\nConnection: close\r\n\r\n${chat()}`, expect: gateway(400) },
  { name: 'a body smuggled behind Content-Length: 0', category: 'framing', key: 'env', raw: `POST ${CHAT} HTTP/1.1\r\nHost: x\r\n{{AUTH}}Content-Type: application/json\r\nContent-Length: 0\r\n\r\nGET /admin/keys HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, expect: gateway(400, 'invalid_json') },
];

export const protocol: HostileRequest[] = [
  { name: 'HTTP/1.1 without Host', category: 'protocol', key: 'env', raw: `POST ${CHAT} HTTP/1.1\r\n{{AUTH}}Content-Type: application/json\r\nContent-Length: ${chat().length}\r\nConnection: close\r\n\r\n${chat()}`, expect: gateway(400, 'missing_host') },
  { name: 'HTTP/1.1 without Host or key', category: 'protocol', key: 'none', raw: 'GET /ratelimit HTTP/1.1\r\nConnection: close\r\n\r\n', expect: gateway(400, 'missing_host') },
  { name: 'HTTP/1.0 without Host is served', category: 'protocol', key: 'env', raw: `POST ${CHAT} HTTP/1.0\r\n{{AUTH}}Content-Type: application/json\r\nContent-Length: ${chat().length}\r\n\r\n${chat()}`, expect: upstream() },
  { name: 'Expect: 100-continue passes', category: 'protocol', key: 'env', raw: raw('POST', CHAT, chat(), 'Expect: 100-continue\r\n'), expect: upstream() },
  { name: 'Expect: 200-ok', category: 'protocol', key: 'env', raw: raw('POST', CHAT, chat(), 'Expect: 200-ok\r\n'), expect: gateway(417, 'expectation_failed') },
  { name: 'Expect: 100-continue-ish', category: 'protocol', key: 'env', raw: raw('POST', CHAT, chat(), 'Expect: 100-continuex\r\n'), expect: gateway(417, 'expectation_failed') },
  { name: 'an empty Expect', category: 'protocol', key: 'env', raw: raw('POST', CHAT, chat(), 'Expect: \r\n'), expect: gateway(417, 'expectation_failed') },
  { name: 'Expect without a key: refused either way, nothing forwarded', category: 'protocol', key: 'none', raw: raw('POST', CHAT, chat(), 'Expect: 500-please\r\n'), expect: gateway(417, 'expectation_failed') },
  { name: 'an unknown method', category: 'protocol', key: 'env', raw: `BREW ${CHAT} HTTP/1.1\r\nHost: x\r\n{{AUTH}}Connection: close\r\n\r\n`, expect: gateway(400, 'bad_request') },
  { name: 'a lower-case method', category: 'protocol', key: 'env', raw: raw('post', CHAT, chat()), expect: gateway(400, 'bad_request') },
  { name: 'the HTTP/2 preface', category: 'protocol', key: 'none', raw: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', expect: gateway(400, 'bad_request') },
  { name: 'a TLS hello', category: 'protocol', key: 'none', raw: '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n', expect: gateway(400, 'bad_request') },
  { name: 'HTTP/9.9', category: 'protocol', key: 'env', raw: `GET /healthz HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n`, expect: gateway(400, 'bad_request') },
  { name: 'GET on the chat endpoint', category: 'protocol', key: 'env', method: 'GET', path: CHAT, expect: gateway(403, 'endpoint_not_allowed') },
  { name: 'DELETE on the chat endpoint', category: 'protocol', key: 'env', method: 'DELETE', path: CHAT, expect: gateway(403, 'endpoint_not_allowed') },
  { name: 'HEAD on an allowed GET endpoint', category: 'protocol', key: 'env', raw: `HEAD /v1/models HTTP/1.1\r\nHost: x\r\n{{AUTH}}Connection: close\r\n\r\n`, expect: gateway(403) },
  { name: 'OPTIONS on the chat endpoint', category: 'protocol', key: 'env', method: 'OPTIONS', path: CHAT, expect: gateway(404, 'not_found') },
  { name: 'the asterisk form', category: 'protocol', key: 'none', raw: 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', expect: gateway(400, 'invalid_path') },
];

export const routes: HostileRequest[] = [
  { name: 'an unknown /v1 path', category: 'routes', key: 'env', body: chat(), path: '/v1/fine_tuning/jobs', expect: gateway(403, 'endpoint_not_allowed') },
  { name: 'an unknown /v1 path without a key', category: 'routes', key: 'none', path: '/v1/files', method: 'GET', expect: gateway(401, 'invalid_api_key') },
  { name: 'an unknown route', category: 'routes', key: 'none', path: '/wp-login.php', method: 'GET', expect: gateway(404, 'not_found') },
  { name: 'legacy: an object, not an array', category: 'routes', key: 'env', path: '/api/openai/completions/gpt3', body: '{"role":"user","content":"x"}', expect: gateway(400, 'invalid_request') },
  { name: 'legacy: an empty array', category: 'routes', key: 'env', path: '/api/openai/completions/gpt3', body: '[]', expect: gateway(400, 'invalid_request') },
  { name: 'legacy: an unknown role', category: 'routes', key: 'stored', path: '/api/openai/completions/gpt3', body: '[{"role":"root","content":"x"}]', expect: gateway(400, 'invalid_request') },
  { name: 'legacy: content a number', category: 'routes', key: 'env', path: '/api/openai/completions/gpt3', body: '[{"role":"user","content":5}]', expect: gateway(400, 'invalid_request') },
  { name: 'legacy: temperature 3', category: 'routes', key: 'env', path: '/api/openai/completions/gpt3?temperature=3', body: '[{"role":"user","content":"x"}]', expect: gateway(400, 'invalid_request') },
  { name: 'legacy: temperature 1e0', category: 'routes', key: 'env', path: '/api/openai/completions/gpt3?temperature=1e0', body: '[{"role":"user","content":"x"}]', expect: gateway(400, 'invalid_request') },
  { name: 'legacy: temperature twice', category: 'routes', key: 'env', path: '/api/openai/completions/gpt3?temperature=0.5&temperature=1', body: '[{"role":"user","content":"x"}]', expect: gateway(400, 'invalid_request') },
  { name: 'legacy: a repeated key inside a message passes', category: 'routes', key: 'env', path: '/api/openai/completions/gpt3', body: '[{"role":"user","role":"user","content":"x"}]', expect: upstream() },
  { name: 'legacy: 129 levels', category: 'routes', key: 'env', path: '/api/openai/completions/gpt3', body: `[${objects(MAX_JSON_DEPTH)}]`, expect: gateway(400, 'invalid_request') },
  { name: 'admin: a name twice', category: 'routes', key: 'admin', path: '/admin/keys', body: '{"name":"a","name":"b"}', expect: gateway(400, 'invalid_request', 'name') },
  { name: 'admin: a limit of 1e300', category: 'routes', key: 'admin', path: '/admin/keys', body: '{"name":"huge","requests_per_hour":1e300}', expect: gateway(400, 'invalid_request', 'requests_per_hour') },
  { name: 'admin: a negative spend limit', category: 'routes', key: 'admin', path: '/admin/keys', body: '{"name":"neg","usd_per_day":-5}', expect: gateway(400, 'invalid_request', 'usd_per_day') },
  { name: 'admin: a name that is a number', category: 'routes', key: 'admin', path: '/admin/keys', body: '{"name":12}', expect: gateway(400, 'invalid_request', 'name') },
  { name: 'admin: invalid JSON', category: 'routes', key: 'admin', path: '/admin/keys', body: '{"name":', expect: gateway(400, 'invalid_json') },
  { name: 'admin: a key id with dots', category: 'routes', key: 'admin', raw: rawGet('/admin/keys/..%2f..%2fhealthz'), expect: gateway(400, 'invalid_path') },
  { name: 'admin: a price of 1e300', category: 'routes', key: 'admin', method: 'PUT', path: '/admin/prices/gpt-4o-mini', body: '{"input":1e300,"output":1}', expect: gateway(400, 'invalid_request') },
  { name: 'admin: usage since garbage', category: 'routes', key: 'admin', method: 'GET', path: '/admin/usage?since=yesterday-ish', expect: gateway(400, 'invalid_request', 'since') },
];

export const slow: HostileRequest[] = [
  { name: 'a body that stops halfway (408)', category: 'slow', key: 'env', stalls: true, raw: `POST ${CHAT} HTTP/1.1\r\nHost: x\r\n{{AUTH}}Content-Type: application/json\r\nContent-Length: ${chat().length}\r\n\r\n${chat().slice(0, 10)}`, expect: gateway(408, 'request_timeout') },
  { name: 'headers that never end (408)', category: 'slow', key: 'env', stalls: true, raw: `POST ${CHAT} HTTP/1.1\r\nHost: x\r\n{{AUTH}}X-Slow: 1\r\n`, expect: gateway(408, 'request_timeout') },
  { name: 'a chunked body without its last chunk (408)', category: 'slow', key: 'stored', stalls: true, raw: `POST ${CHAT} HTTP/1.1\r\nHost: x\r\n{{AUTH}}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"mod\r\n`, expect: gateway(408, 'request_timeout') },
];
