/**
 * Calls refused before they were opened, because every upstream that serves their model is
 * sitting out a 429 (or is down: 503), are no usage records, so they reach the store's rollups as
 * refusals (batched by the refusal recorder): the dashboard counts them among the 429s and the
 * upstream errors of their key and model, never as requests.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startMockOpenAI, type MockOpenAI } from '../fixtures/mock-openai.js';
import { ADMIN_KEY } from '../keys/helpers.js';
import { chat, openaiEntry, postChat, refusedUrl, startRoutedGateway, type RoutedGateway } from '../upstreams/helpers.js';

let a: MockOpenAI;
let gw: RoutedGateway;

beforeAll(async () => {
  a = await startMockOpenAI();
  gw = await startRoutedGateway({
    file: { breaker: { failures: 1, cooldown_ms: 60_000 }, upstreams: [openaiEntry('a', a, { models: ['gpt-4o*'] }), openaiEntry('dead', await refusedUrl(), { models: ['dead-model'] })] },
    env: { PROXYGPT_ADMIN_KEY: ADMIN_KEY, LOG_LEVEL: 'warn' },
  });
});
afterAll(async () => {
  await gw.close();
  await a.close();
});

async function overview() {
  await gw.app.recorder.flush();
  await gw.app.refusals.flush();
  const res = await fetch(`${gw.url}/dashboard/api/overview?range=1h`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as {
    total: { requests: number; rate_limited: number; upstream_errors: number };
    by_key: { id: string; requests: number; rate_limited: number; upstream_errors: number }[];
    by_model: { model: string | null; requests: number; rate_limited: number; upstream_errors: number }[];
  };
}

it('an upstream sitting out a 429: the next calls are refused before forwarding, counted as 429s of their key and model', async () => {
  a.forced = { 'x-mock-status': '429', 'x-mock-response-headers': JSON.stringify({ 'retry-after': '30' }) };
  // The upstream's own 429: a call, recorded as usage.
  expect((await postChat(gw, chat('gpt-4o-mini'))).status).toBe(429);
  a.forced = {};
  for (let i = 0; i < 3; i++) {
    const res = await postChat(gw, chat('gpt-4o-mini'));
    expect(res.status).toBe(429);
    expect(await res.json()).toMatchObject({ error: { code: 'upstream_rate_limited' } });
  }
  expect(a.requests).toHaveLength(1);
  const o = await overview();
  expect(o.total).toMatchObject({ requests: 1, rate_limited: 4, upstream_errors: 0 });
  expect(o.by_key).toEqual([expect.objectContaining({ id: 'env-key-1', requests: 1, rate_limited: 4 })]);
  expect(o.by_model).toEqual([expect.objectContaining({ model: 'gpt-4o-mini', requests: 1, rate_limited: 4 })]);
});

it('an upstream down (breaker open): the refusals are 503s, counted as upstream errors', async () => {
  // The first call fails to connect (502) and opens the breaker; the next are refused with 503.
  expect((await postChat(gw, chat('dead-model'))).status).toBe(502);
  for (let i = 0; i < 2; i++) expect((await postChat(gw, chat('dead-model'))).status).toBe(503);
  const o = await overview();
  expect(o.by_model.find((m) => m.model === 'dead-model')).toMatchObject({ requests: 1, rate_limited: 0, upstream_errors: 3 });
  expect(o.total).toMatchObject({ requests: 2, rate_limited: 4, upstream_errors: 3 });
});
