/**
 * Issue 8, graceful shutdown (what SIGTERM runs, app.close()): calls in flight and open streams go
 * on until the grace period (PROXYGPT_SHUTDOWN_GRACE_MS) is over; then an open stream ends with a
 * `shutting_down` error event as its last event, and a call still waiting for its answer gets a
 * 503 `shutting_down`. Every one of them is settled once (a stream billed what it delivered, a
 * waiting call its prompt) and recorded, and close() resolves after that, with usage written.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { authHeaders, chatBody, PROXY_KEY, startGateway, type TestGateway } from '../helpers.js';
import { eventually } from '../keys/helpers.js';
import { watchLimiter, type LimiterWatch } from '../call/watch-limiter.js';

const GRACE_MS = 400;
let gw: TestGateway;
let seen: LimiterWatch;

beforeAll(async () => {
  gw = await startGateway({ env: { PROXYGPT_SHUTDOWN_GRACE_MS: String(GRACE_MS), USE_HOURLY_RATE_LIMIT: 'true', PROXYGPT_HOURLY_RATE_LIMIT: '100', PROXYGPT_RATE_LIMIT_COUNT: 'success' } });
  seen = watchLimiter(gw);
});
afterAll(async () => {
  await gw.mock.close();
});

describe('shutdown with calls in flight', () => {
  it('lets a short call finish, then ends a stream with an error event and answers a waiting call 503; all settled and recorded', async () => {
    // A stream that would run 50 s (a chunk every 50 ms), a call the mock holds, a call that takes 100 ms.
    const stream = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...authHeaders(PROXY_KEY), 'x-mock-chunks': '1000', 'x-mock-chunk-delay-ms': '50' },
      body: chatBody({ stream: true }),
    });
    expect(stream.status).toBe(200);
    const streamText = stream.text();
    const waiting = fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { ...authHeaders(PROXY_KEY), 'x-mock-hold': '1' }, body: chatBody() });
    await eventually('the held call reached the mock', () => gw.mock.held, (n) => n === 1);
    const short = fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { ...authHeaders(PROXY_KEY), 'x-mock-delay-ms': '100' }, body: chatBody() });
    await eventually('all three admitted', () => seen.reserved.length, (n) => n === 3);

    const started = Date.now();
    const closed = gw.app.close();
    const shortAnswer = await short;
    expect(shortAnswer.status).toBe(200);
    await shortAnswer.text();

    const waited = await waiting;
    expect(waited.status).toBe(503);
    expect(await waited.json()).toMatchObject({ error: { code: 'shutting_down', type: 'api_error' } });
    const text = await streamText;
    const events = text.split('\n\n').filter((e) => e.startsWith('data: '));
    expect(events.length).toBeGreaterThan(1); // content was flowing before the cut
    expect(JSON.parse(events.at(-1)!.slice('data: '.length))).toMatchObject({ error: { code: 'shutting_down', type: 'api_error' } });
    expect(text).not.toContain('[DONE]');
    await closed;
    // Not before the grace period was over (the short call alone would have let it close at once).
    expect(Date.now() - started).toBeGreaterThanOrEqual(GRACE_MS - 5);

    // Settled once each: the short call and the stream were 2xx, counted; the waiting call (503) released.
    expect(seen.committed).toHaveLength(3);
    expect(new Set(seen.committed).size).toBe(3);
    const db = new Database(join(gw.dir, 'proxygpt.db'), { readonly: true });
    const rows = db.prepare('SELECT status, stream, prompt_tokens AS prompt, completion_tokens AS completion, estimated FROM usage_events ORDER BY status, stream').all() as {
      status: number;
      stream: number;
      prompt: number;
      completion: number;
      estimated: number;
    }[];
    db.close();
    expect(rows.map((r) => [r.status, r.stream])).toEqual([
      [200, 0],
      [200, 1],
      [503, 0],
    ]);
    const streamed = rows.find((r) => r.stream === 1)!;
    // Billed what it delivered (counted: the stream never reached its usage chunk), never nothing.
    expect(streamed.estimated).toBe(1);
    expect(streamed.completion).toBeGreaterThan(0);
    expect(rows.find((r) => r.status === 503)!.prompt).toBeGreaterThan(0); // the upstream had the prompt
  }, 20_000);
});
