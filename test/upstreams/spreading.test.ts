/**
 * Weighted spreading: upstreams that serve one model share its calls by weight, and the keys of
 * one upstream share that upstream's calls by theirs (smooth weighted round robin: deterministic,
 * so counts are checked against the weights' shares to within one call), also when calls run
 * concurrently. Models served by different sets of upstreams keep their own turns.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMockOpenAI, type MockOpenAI } from '../fixtures/mock-openai.js';
import { chat, KEYS, openaiEntry, postChat, startRoutedGateway, type RoutedGateway } from './helpers.js';

/** Sends `n` chat calls for `model`, `concurrency` at a time; every one must succeed. */
async function send(gw: RoutedGateway, model: string, n: number, concurrency = 20): Promise<void> {
  for (let done = 0; done < n; done += concurrency) {
    const batch = Array.from({ length: Math.min(concurrency, n - done) }, async () => {
      const res = await postChat(gw, chat(model));
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    });
    await Promise.all(batch);
  }
}

const keyOf = (r: MockOpenAI['requests'][number]) => String(r.headers.authorization).replace('Bearer ', '');

/** Each count must be within one call of its share of `total` by `weights`. */
function expectShares(counts: number[], weights: number[], total: number): void {
  const sum = weights.reduce((a, b) => a + b, 0);
  counts.forEach((count, i) => {
    const share = (total * weights[i]!) / sum;
    expect(Math.abs(count - share), `count ${count} vs share ${share} (weights ${weights.join(':')})`).toBeLessThanOrEqual(1);
  });
  expect(counts.reduce((a, b) => a + b, 0)).toBe(total);
}

describe('weighted spreading', () => {
  let a: MockOpenAI;
  let b: MockOpenAI;
  let c: MockOpenAI;
  let gw: RoutedGateway;
  beforeAll(async () => {
    [a, b, c] = await Promise.all([startMockOpenAI(), startMockOpenAI(), startMockOpenAI()]);
    gw = await startRoutedGateway({
      file: {
        upstreams: [
          openaiEntry('a', a, { weight: 3, api_key: ['${KEY_A1}', '${KEY_A2}'], models: ['gpt-4o*'] }),
          openaiEntry('b', b, { weight: 1, api_key: '${KEY_B}', models: ['gpt-4o*', 'o3*'] }),
          openaiEntry('c', c, { weight: 2, api_key: [{ key: '${KEY_A1}', weight: 3 }, { key: '${KEY_A2}', weight: 1 }], models: ['o3*'] }),
        ],
      },
      env: { LOG_LEVEL: 'warn' },
    });
  });
  afterAll(async () => {
    await gw.close();
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it('upstreams by weight (3:1) and, within one, its keys in turn (1:1)', async () => {
    await send(gw, 'gpt-4o-mini', 400);
    expectShares([a.requests.length, b.requests.length], [3, 1], 400);
    const keys = a.requests.map(keyOf);
    expectShares([keys.filter((k) => k === KEYS.KEY_A1).length, keys.filter((k) => k === KEYS.KEY_A2).length], [1, 1], a.requests.length);
    // Smooth: the lighter upstream is never starved for long (no run of more than 3 calls to a in a row, one at a time).
    a.reset();
    b.reset();
    const order: string[] = [];
    for (let i = 0; i < 16; i++) {
      const before = a.requests.length;
      await send(gw, 'gpt-4o-mini', 1, 1);
      order.push(a.requests.length > before ? 'a' : 'b');
    }
    expect(order.join('')).not.toMatch(/aaaa/);
    expect(order.filter((x) => x === 'b')).toHaveLength(4);
  });

  it('another model served by another set of upstreams has its own turns and key weights (b:c = 1:2, c’s keys 3:1)', async () => {
    for (const m of [a, b, c]) m.reset();
    await send(gw, 'o3-mini', 240);
    expect(a.requests).toHaveLength(0);
    expectShares([b.requests.length, c.requests.length], [1, 2], 240);
    const keys = c.requests.map(keyOf);
    expectShares([keys.filter((k) => k === KEYS.KEY_A1).length, keys.filter((k) => k === KEYS.KEY_A2).length], [3, 1], c.requests.length);
  });
});
