/**
 * The original ProxyGPT route, POST /api/openai/completions/gpt3: a JSON array of messages in,
 * {"message": "<assistant text>"} out, one chat completion with the legacy model upstream.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { authHeaders, PROXY_KEY, startGateway, UPSTREAM_KEY, type TestGateway } from '../helpers.js';
import { eventually, openDb, type UsageRow } from '../keys/helpers.js';

const ROUTE = '/api/openai/completions/gpt3';
const HI = JSON.stringify([{ role: 'user', content: 'hi' }]);

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => gw.close());

async function legacy(target: TestGateway, body: string, query = '', headers: Record<string, string> = authHeaders()) {
  const res = await fetch(`${target.url}${ROUTE}${query}`, { method: 'POST', headers, body });
  return { res, json: (await res.json()) as Record<string, unknown> };
}

function lastUpstreamBody(target: TestGateway): Record<string, unknown> {
  const last = target.mock.requests.at(-1);
  expect(last).toBeDefined();
  return JSON.parse(last!.body) as Record<string, unknown>;
}

interface ErrorJson {
  error: { message: string; type: string; code: string | null; param: string | null };
}

function expectError(json: unknown): ErrorJson['error'] {
  expect(json).toEqual({ error: { message: expect.any(String), type: expect.any(String), code: expect.any(String), param: null } });
  return (json as ErrorJson).error;
}

describe('POST /api/openai/completions/gpt3', () => {
  it('answers {"message": "<assistant text>"}', async () => {
    const { res, json } = await legacy(gw, HI);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(json).toEqual({ message: 'Echo: hi' });
  });

  it('sends one chat completion with model gpt-3.5-turbo, the messages as given, no temperature', async () => {
    gw.mock.reset();
    const messages = [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'first' },
      { role: 'assistant', content: 'ok' },
      { role: 'user', content: 'second question' },
    ];
    const { json } = await legacy(gw, JSON.stringify(messages));
    expect(json).toEqual({ message: 'Echo: second question' });
    expect(gw.mock.requests).toHaveLength(1);
    const seen = gw.mock.requests[0]!;
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe('/v1/chat/completions');
    expect(seen.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
    expect(seen.headers['content-type']).toBe('application/json');
    expect(JSON.stringify(seen.headers)).not.toContain(PROXY_KEY);
    expect(JSON.parse(seen.body)).toEqual({ model: 'gpt-3.5-turbo', messages });
  });

  it.each([
    ['0.5', 0.5],
    ['0', 0],
    ['2', 2],
    ['1.25', 1.25],
    ['.7', 0.7],
  ])('forwards ?temperature=%s as the number %s', async (query, value) => {
    const { res, json } = await legacy(gw, HI, `?temperature=${query}`);
    expect(res.status).toBe(200);
    expect(json).toEqual({ message: 'Echo: hi' });
    expect(lastUpstreamBody(gw).temperature).toBe(value);
  });

  it('does not forward client headers (the mock control headers are ignored)', async () => {
    const { res } = await legacy(gw, HI, '', { ...authHeaders(), 'x-mock-status': '500' });
    expect(res.status).toBe(200);
  });

  it.each([
    ['an object instead of an array', JSON.stringify({ role: 'user', content: 'hi' })],
    ['an empty array', '[]'],
    ['a message without content', JSON.stringify([{ role: 'user' }])],
    ['a message without role', JSON.stringify([{ content: 'hi' }])],
    ['non-string content', JSON.stringify([{ role: 'user', content: 42 }])],
    ['an unknown role', JSON.stringify([{ role: 'wizard', content: 'hi' }])],
    ['a string instead of a message', JSON.stringify(['hi'])],
    ['a string body', JSON.stringify('hi')],
    ['null', 'null'],
    ['invalid JSON', '[{"role":"user",'],
    ['an empty body', ''],
  ])('answers 400 for %s', async (_name, body) => {
    const before = gw.mock.requests.length;
    const { res, json } = await legacy(gw, body);
    expect(res.status).toBe(400);
    expectError(json);
    expect(gw.mock.requests.length).toBe(before);
  });

  it.each([['abc'], ['5'], ['2.01'], ['-1'], [''], ['1e0'], ['0x1'], ['Infinity'], ['NaN'], ['0.5&temperature=1']])(
    'answers 400 for ?temperature=%s',
    async (temperature) => {
      const before = gw.mock.requests.length;
      const { res, json } = await legacy(gw, HI, `?temperature=${temperature}`);
      expect(res.status).toBe(400);
      expect(expectError(json).message).toMatch(/temperature/);
      expect(gw.mock.requests.length).toBe(before);
    },
  );

  it('answers 415 for a body that is not JSON', async () => {
    const { res, json } = await legacy(gw, HI, '', { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'text/plain' });
    expect(res.status).toBe(415);
    expectError(json);
  });

  it('answers 401 without a key or with a wrong one, before looking at the body', async () => {
    for (const headers of [{ 'content-type': 'application/json' }, authHeaders('pgpt-wrong-key-00000000000000')]) {
      for (const body of [HI, '{"not": "an array"}', '[broken']) {
        const { res, json } = await legacy(gw, body, '', headers);
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toBe('Bearer');
        expect(expectError(json).code).toBe('invalid_api_key');
      }
    }
  });
});

describe('legacy model setting', () => {
  it('uses PROXYGPT_LEGACY_MODEL when set', async () => {
    const custom = await startGateway({ mock: gw.mock, env: { PROXYGPT_LEGACY_MODEL: 'gpt-4o-mini' } });
    try {
      const { json } = await legacy(custom, HI, '?temperature=1');
      expect(json).toEqual({ message: 'Echo: hi' });
      expect(lastUpstreamBody(custom)).toMatchObject({ model: 'gpt-4o-mini', temperature: 1 });
    } finally {
      await custom.close();
    }
  });

  it('answers 403 when the legacy model is not in PROXYGPT_ALLOWED_MODELS', async () => {
    const custom = await startGateway({ mock: gw.mock, env: { PROXYGPT_ALLOWED_MODELS: 'gpt-4o*' } });
    try {
      const before = gw.mock.requests.length;
      const { res, json } = await legacy(custom, HI);
      expect(res.status).toBe(403);
      expect(expectError(json).code).toBe('model_not_allowed');
      expect(gw.mock.requests.length).toBe(before);
    } finally {
      await custom.close();
    }
  });
});

describe('upstream errors', () => {
  let upstream: Server;
  let next: { status: number; body: string; contentType: string };
  let gwBad: TestGateway;

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(next.status, { 'content-type': next.contentType });
        res.end(next.body);
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    gwBad = await startGateway({ env: { OPENAI_BASE_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1` } });
  });
  afterAll(async () => {
    await gwBad.close();
    upstream.closeAllConnections();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  it.each([[400], [401], [429], [500], [503]])('passes an upstream %s through with its status and body', async (status) => {
    const error = { error: { message: `upstream says ${status}`, type: 'upstream_error', code: 'up', param: null } };
    next = { status, body: JSON.stringify(error), contentType: 'application/json' };
    const { res, json } = await legacy(gwBad, HI);
    expect(res.status).toBe(status);
    expect(json).toEqual(error);
  });

  it('passes the upstream 404 of a wrong base path through (the mock, via OPENAI_BASE_URL)', async () => {
    const wrongPath = await startGateway({ mock: gw.mock, env: { OPENAI_BASE_URL: `${gw.mock.url}/nope` } });
    try {
      const { res, json } = await legacy(wrongPath, HI);
      expect(res.status).toBe(404);
      expect((json as unknown as ErrorJson).error.message).toBe('mock has no POST /v1/nope/chat/completions');
    } finally {
      await wrongPath.close();
    }
  });

  it('bills a 2xx without usage as /v1 does: prompt and completion counted with the tokenizer', async () => {
    const answer = { choices: [{ index: 0, message: { role: 'assistant', content: 'four score and seven years ago our fathers' } }] };
    next = { status: 200, body: JSON.stringify(answer), contentType: 'application/json' };
    const viaLegacy = await legacy(gwBad, HI);
    expect(viaLegacy.json).toEqual({ message: answer.choices[0]!.message.content });
    const viaV1 = await fetch(`${gwBad.url}/v1/chat/completions`, {
      method: 'POST',
      headers: authHeaders(),
      body: JSON.stringify({ model: 'gpt-3.5-turbo', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(await viaV1.json()).toEqual(answer);
    const ids = [viaLegacy.res.headers.get('x-proxygpt-request-id'), viaV1.headers.get('x-proxygpt-request-id')];
    const rows = await eventually(
      'both calls are recorded',
      async () => {
        await gwBad.app.recorder.flush();
        const db = openDb(gwBad);
        try {
          return ids.map((id) => db.prepare('SELECT * FROM usage_events WHERE request_id = ?').get(id) as UsageRow | undefined);
        } finally {
          db.close();
        }
      },
      (found) => found.every((row) => row !== undefined),
    );
    const [legacyRow, v1Row] = rows as UsageRow[];
    expect(legacyRow).toMatchObject({ status: 200, estimated: 1, path: ROUTE });
    expect(legacyRow!.completion_tokens).toBeGreaterThan(0);
    expect(legacyRow!.completion_tokens).toBe(v1Row!.completion_tokens);
    expect(legacyRow!.prompt_tokens).toBe(v1Row!.prompt_tokens);
  });

  it('answers 502 bad_upstream_response when a 200 carries no assistant message', async () => {
    for (const body of ['{"choices": []}', 'not json at all', '{"choices":[{"message":{"content":null}}]}']) {
      next = { status: 200, body, contentType: 'application/json' };
      const { res, json } = await legacy(gwBad, HI);
      expect(res.status).toBe(502);
      expect(expectError(json).code).toBe('bad_upstream_response');
    }
  });
});
