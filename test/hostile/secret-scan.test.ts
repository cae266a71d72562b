/**
 * A secret scan across a whole run of mixed traffic (issue 8, "Prove it"): two gateways, one with
 * INSECURE_DEBUG on and one with it off, both logging at trace level, each with an upstream key,
 * environment proxy keys and an admin key that match none of the Redactor's token patterns (so only
 * their configured values protect them) and stored keys. Through a recording TCP proxy in front
 * of each, the run drives successes (JSON, streams, embeddings, models, Responses, the legacy
 * route), upstream answers that echo the Authorization they got (the upstream key) and the other
 * secrets in headers and bodies (2xx, streams, errors, cut across chunks), upstream body faults
 * (502, 504), a client leaving mid-stream, 4xx of every kind (secrets planted in bodies, paths,
 * queries and headers of the refused requests), admin calls and the CLI in remote mode. Then EVERY
 * byte the gateways sent (status lines, headers, bodies, chunk framing), every answer as the
 * client decoded it, every log line and the CLI's output are searched for each secret, as it is,
 * percent-encoded, base64/base64url (every alignment), hex or \u-escaped: none may hold one. The
 * only secrets a response may carry are the ones the admin asked for (a key's secret at creation
 * and rotation), for keys not scanned here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetch } from 'undici';
import { PROXY_KEY, startGateway, type TestGateway } from '../helpers.js';
import { admin as adminCall, type CreatedKey } from '../keys/helpers.js';
import { runCli, type CliResult } from '../cli/cli.js';
import { findSecrets, formsOf, recordingProxy, type RecordingProxy } from './secret-forms.js';
import { sendFetch, sendRaw, type Answer } from './send.js';

const UPSTREAM = 'upstream-plain-secret-value-4242';
const PLAIN_PROXY = 'plain-proxy-key-value-0451-zz';
const ADMIN = 'admin-plain-secret-value-9090';
const ENV_SECRETS = [UPSTREAM, PROXY_KEY, PLAIN_PROXY, ADMIN];

const ECHO_HEADERS = JSON.stringify({
  'x-echo-authorization': '$authorization',
  'www-authenticate': 'Bearer realm="up", token="$authorization"',
  'x-echo-list': ['$authorization', `admin=${ADMIN}`, `proxy=${PLAIN_PROXY}`],
});
const ECHO_TEXT = `got $authorization; admin ${ADMIN}; proxies ${PROXY_KEY} ${PLAIN_PROXY}`;

interface Run {
  name: string;
  gw: TestGateway;
  proxy: RecordingProxy;
  scanned: CreatedKey;
  limited: CreatedKey;
  answers: Answer[];
  cli: CliResult[];
}

const runs: Run[] = [];

async function start(name: string, insecureDebug: string): Promise<Run> {
  const gw = await startGateway({
    env: {
      OPENAI_API_KEY: UPSTREAM,
      PROXYGPT_API_KEYS: `${PROXY_KEY},${PLAIN_PROXY}`,
      PROXYGPT_ADMIN_KEY: ADMIN,
      INSECURE_DEBUG: insecureDebug,
      LOG_LEVEL: 'trace',
      USE_HOURLY_RATE_LIMIT: 'true',
      PROXYGPT_HOURLY_RATE_LIMIT: '100000',
      PROXYGPT_ALLOWED_ENDPOINTS: 'POST /v1/chat/completions, POST /v1/embeddings, POST /v1/responses, GET /v1/models, GET /v1/models/*',
      PROXYGPT_ALLOWED_MODELS: 'gpt-4o*, text-embedding-3-small',
      PROXYGPT_LEGACY_MODEL: 'gpt-4o-mini',
      PROXYGPT_MAX_BODY_BYTES: String(64 * 1024),
      PROXYGPT_UPSTREAM_TIMEOUT_MS: '400',
    },
  });
  // Created straight at the gateway (not through the recorder): their one-time answers are by design.
  const create = async (body: Record<string, unknown>) => {
    const res = await adminCall<CreatedKey>(gw, 'POST', '/keys', body, `Bearer ${ADMIN}`);
    expect(res.status, res.text).toBe(201);
    return res.body;
  };
  const scanned = await create({ name: 'scanned', tokens_per_hour: 1_000_000, usd_per_day: 100 });
  const limited = await create({ name: 'limited', requests_per_hour: 1 });
  return { name, gw, proxy: await recordingProxy(gw.url), scanned, limited, answers: [], cli: [] };
}

beforeAll(async () => {
  runs.push(...(await Promise.all([start('INSECURE_DEBUG off', 'false'), start('INSECURE_DEBUG on', 'true')])));
  await Promise.all(runs.map(drive));
}, 60_000);
afterAll(async () => {
  for (const run of runs) {
    await run.proxy.close();
    await run.gw.close();
  }
});

const CHAT = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi there"}]}';
const chatWith = (extra: string) => CHAT.replace(/}$/, `,${extra}}`);

/** Drives the whole mix of traffic through `run`'s recording proxy, keeping every decoded answer. */
async function drive(run: Run): Promise<void> {
  const base = run.proxy.url;
  const keep = async (answer: Promise<Answer>) => run.answers.push(await answer);
  const post = (path: string, key: string | null, body: string | Buffer, headers: Record<string, string> = {}) =>
    keep(sendFetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(key === null ? {} : { authorization: `Bearer ${key}` }), ...headers }, body }));
  const get = (path: string, key: string | null, headers: Record<string, string> = {}) =>
    keep(sendFetch(`${base}${path}`, { method: 'GET', headers: { ...(key === null ? {} : { authorization: `Bearer ${key}` }), ...headers } }));
  const raw = (request: string) => keep(sendRaw(base, request));
  const admin = (method: string, path: string, body?: unknown, key = ADMIN) =>
    keep(
      sendFetch(`${base}/admin${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    );
  const { scanned, limited } = run;

  // Successes, with every kind of key.
  for (const key of [PROXY_KEY, PLAIN_PROXY, scanned.key]) {
    await post('/v1/chat/completions', key, CHAT);
    await post('/v1/chat/completions', key, chatWith('"stream":true'));
  }
  await post('/v1/chat/completions', PLAIN_PROXY, chatWith('"stream":true,"stream_options":{"include_usage":true}'));
  await post('/v1/embeddings', scanned.key, '{"model":"text-embedding-3-small","input":"hello"}');
  await get('/v1/models', PROXY_KEY);
  await get('/v1/models/gpt-4o', scanned.key);
  await post('/v1/responses', scanned.key, '{"model":"gpt-4o-mini","input":"hi"}', { 'x-mock-responses': '1' });
  await post('/v1/responses', PLAIN_PROXY, '{"model":"gpt-4o-mini","input":"hi","stream":true}', { 'x-mock-responses': '1' });
  await post('/api/openai/completions/gpt3', scanned.key, '[{"role":"user","content":"old style"}]');
  await get('/ratelimit', scanned.key);
  await get('/healthz', null);
  await get('/openapi.json', null);

  // Upstreams echoing the key they got (and our other secrets) in headers and bodies, whole and cut.
  for (const [headers, body] of [
    [{}, CHAT],
    [{ 'x-mock-chunked': '1' }, CHAT],
    [{}, chatWith('"stream":true')],
    [{ 'x-mock-status': '400' }, CHAT],
    [{ 'x-mock-status': '401' }, CHAT],
    [{ 'x-mock-status': '429' }, CHAT],
    [{ 'x-mock-status': '500' }, chatWith('"stream":true')],
  ] as [Record<string, string>, string][]) {
    for (const split of [null, '1', '20']) {
      const cut: Record<string, string> = split === null ? {} : { 'x-mock-split-at': split };
      await post('/v1/chat/completions', scanned.key, body, { 'x-mock-response-headers': ECHO_HEADERS, 'x-mock-echo': ECHO_TEXT, ...headers, ...cut });
    }
  }
  await post('/api/openai/completions/gpt3', PROXY_KEY, `[{"role":"user","content":"repeat ${ADMIN} and ${PLAIN_PROXY}"}]`);

  // Upstream body faults (502, 504) and a client that leaves mid-stream.
  await post('/v1/chat/completions', scanned.key, CHAT, { 'x-mock-body-fault': 'reset', 'x-mock-echo': ECHO_TEXT });
  await post('/v1/chat/completions', PLAIN_PROXY, CHAT, { 'x-mock-body-fault': 'stall' });
  const leaving = new AbortController();
  const stream = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${scanned.key}`, 'content-type': 'application/json', 'x-mock-chunks': '50', 'x-mock-chunk-delay-ms': '20', 'x-mock-echo': ECHO_TEXT },
    body: chatWith('"stream":true'),
    signal: leaving.signal,
  });
  await stream.body!.getReader().read();
  leaving.abort();

  // 4xx of every kind, with secrets planted in what was refused.
  await post('/v1/chat/completions', PROXY_KEY, `{"model":"${ADMIN}","user":"${UPSTREAM}`);
  await post('/v1/chat/completions', PROXY_KEY, `{"model":"gpt-4o-mini","model":"${PLAIN_PROXY}","messages":[]}`);
  await post('/v1/chat/completions', scanned.key, chatWith(`"max_tokens":"${ADMIN}"`));
  await post('/v1/chat/completions', PROXY_KEY, `{"model":"${PLAIN_PROXY}","messages":[]}`);
  await post('/v1/chat/completions', `${PLAIN_PROXY}x`, CHAT);
  await post('/v1/chat/completions', ADMIN, CHAT);
  await post('/v1/chat/completions', null, CHAT, { authorization: `Basic ${Buffer.from(`user:${PROXY_KEY}`).toString('base64')}` });
  await post('/v1/chat/completions', null, CHAT, { 'x-api-key': PLAIN_PROXY });
  await post('/v1/chat/completions', PROXY_KEY, 'x'.repeat(70 * 1024));
  await post('/v1/chat/completions', PROXY_KEY, CHAT, { 'content-type': 'text/plain' });
  await get(`/v1/files/${encodeURIComponent(ADMIN)}`, PROXY_KEY);
  await get(`/nowhere?key=${encodeURIComponent(PLAIN_PROXY)}`, null);
  await get(`/nowhere/${ADMIN}/${UPSTREAM}`, null);
  await post(`/api/openai/completions/gpt3?temperature=${ADMIN}`, PROXY_KEY, '[{"role":"user","content":"x"}]');
  await post('/api/openai/completions/gpt3', PROXY_KEY, `[{"role":"${ADMIN}","content":"x"}]`);
  await post('/v1/chat/completions', limited.key, CHAT);
  await post('/v1/chat/completions', limited.key, CHAT); // 429
  await raw(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${PLAIN_PROXY}\r\nExpect: ${ADMIN}\r\nContent-Type: application/json\r\nContent-Length: ${CHAT.length}\r\nConnection: close\r\n\r\n${CHAT}`);
  await raw(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${ADMIN.repeat(700)}\r\nConnection: close\r\n\r\n`);
  await raw(`GET /ratelimit HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${PLAIN_PROXY}\r\nBad Header: ${ADMIN}\r\n\r\n`);
  await raw(`GET /ratelimit HTTP/1.1\r\nAuthorization: Bearer ${PLAIN_PROXY}\r\nConnection: close\r\n\r\n`);
  await raw(`GET /v1/%2e%2e/${PLAIN_PROXY} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${PLAIN_PROXY}\r\nConnection: close\r\n\r\n`);
  await raw(`GET /ratelimit HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${PLAIN_PROXY}\r\nAuthorization: Bearer ${PROXY_KEY}\r\nConnection: close\r\n\r\n`);

  // Admin calls, a wrong admin key, and the CLI in remote mode.
  await admin('GET', '/keys');
  await admin('GET', `/keys/${scanned.id}`);
  await admin('PATCH', `/keys/${scanned.name}`, { notes: 'scanned by the secret scan' });
  await admin('GET', '/usage?since=1d');
  await admin('GET', '/prices');
  await admin('PUT', '/prices/gpt-4o-mini', { input: 0.15, output: 0.6 });
  await admin('POST', '/keys', { name: `bad ${ADMIN}` });
  await admin('GET', `/keys/${encodeURIComponent(PLAIN_PROXY)}`);
  await admin('GET', '/keys', undefined, `${ADMIN}x`);
  await admin('GET', '/keys', undefined, PROXY_KEY);
  const cliEnv = { env: { PROXYGPT_ADMIN_KEY: ADMIN } };
  for (const args of [['keys', 'list'], ['keys', 'show', 'scanned'], ['usage', '--since', '1d'], ['prices', 'list'], ['keys', 'show', PLAIN_PROXY]]) {
    run.cli.push(await runCli(['--url', base, ...args, '--json'], cliEnv));
    run.cli.push(await runCli(['--url', base, ...args], cliEnv));
  }
  run.cli.push(await runCli(['--url', base, '--admin-key', `${ADMIN}x`, 'keys', 'list']));
  run.cli.push(await runCli(['--url', `${base}/?token=${ADMIN}`, 'keys', 'list'], cliEnv));
  await run.gw.app.recorder.flush();
}

describe('the scan itself', () => {
  it('finds a secret in each form it looks for, wherever it sits in the text', () => {
    const forms = formsOf(ADMIN);
    for (const prefix of ['', 'a', 'ab', 'abc']) {
      const texts = [
        `x${prefix}${ADMIN}y`,
        `q=${[...Buffer.from(prefix + ADMIN)].map((b) => `%${b.toString(16).toUpperCase()}`).join('')}`,
        Buffer.from(`${prefix}Bearer ${ADMIN}!`).toString('base64'),
        Buffer.from(`${prefix}:${ADMIN}`).toString('base64url'),
        Buffer.from(prefix + ADMIN).toString('hex'),
        `"${prefix}${[...ADMIN].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"`,
      ];
      for (const text of texts) expect(findSecrets(text, forms), text).not.toEqual([]);
    }
    // Not a secret: all of it but its last character, or its first half encoded.
    expect(findSecrets(`${ADMIN.slice(0, -1)} ${Buffer.from(ADMIN.slice(0, 14)).toString('base64')}`, forms)).toEqual([]);
  });
});

const secretsOf = (run: Run) => [...ENV_SECRETS, run.scanned.key, run.limited.key];

describe.each([0, 1])('secret scan, gateway %i', (index) => {
  const run = () => runs[index]!;

  it('the run covered successes, streams, echoes, faults, every kind of 4xx, admin and CLI calls', () => {
    const statuses = new Set(run().answers.map((a) => a.status));
    for (const status of [200, 400, 401, 403, 404, 413, 415, 417, 429, 431, 500, 502, 504]) {
      expect(statuses.has(status), `no ${status} in ${[...statuses].join(',')}`).toBe(true);
    }
    // The upstream really got the key and echoed it back.
    expect(run().gw.mock.requests.some((r) => r.headers.authorization === `Bearer ${UPSTREAM}`)).toBe(true);
    expect(run().gw.mock.aborted).toBeGreaterThanOrEqual(1);
    expect(run().cli.filter((r) => r.code === 0).length).toBeGreaterThanOrEqual(8);
    expect(run().gw.logs.length).toBeGreaterThan(30);
    expect(run().proxy.bytes()).toBeGreaterThan(50_000);
  });

  it(`no secret, in any form, in any byte the gateway sent, any answer, any log line or the CLI's output`, () => {
    const forms = secretsOf(run()).flatMap(formsOf);
    const found: string[] = [];
    const scan = (where: string, text: string) => {
      for (const hit of findSecrets(text, forms)) found.push(`${where}: ${hit}`);
    };
    run().proxy.received().forEach((text, i) => scan(`connection ${i}`, text));
    run().answers.forEach((answer, i) => scan(`answer ${i} (${answer.status})`, `${JSON.stringify(answer.headers)}\n${answer.body}`));
    run().gw.logs.forEach((line, i) => scan(`log line ${i}`, line));
    run().cli.forEach((result, i) => scan(`CLI run ${i}`, `${result.stdout}\n${result.stderr}`));
    expect(found, run().name).toEqual([]);
  });
});
