/**
 * A gateway with usage to show on the dashboard, from real proxied calls through the mock
 * upstream: two stored keys (one with hostile notes, one with hostile model names sent by its
 * client), calls that succeed, one the upstream answers 500, 429s from a key's own limit, and
 * slow calls for the latency chart.
 */
import { ADMIN_KEY, call, chatRequest, createKey, startAdminGateway, type CreatedKey } from '../keys/helpers.js';
import type { TestGateway } from '../helpers.js';

/** Runs as script if ever parsed as HTML: the tests check that nothing ever sets it. */
export const HOSTILE_NOTES = '<img src=x onerror="window.__pwned=\'notes\'"><script>window.__pwned="notes-script"</script> & "quotes"';
export const HOSTILE_MODEL = '<img src=x onerror="window.__pwned=\'model\'">';

export interface DashboardFixture {
  gw: TestGateway;
  alice: CreatedKey;
  bob: CreatedKey;
  /** A key with requests_per_hour 2 that made 4 calls: 2 answered, 2 refused with 429. */
  carol: CreatedKey;
  adminKey: string;
  /** Every secret a URL must never carry. */
  secrets: string[];
}

export async function dashboardFixture(env: Record<string, string> = {}): Promise<DashboardFixture> {
  const gw = await startAdminGateway(env);
  const alice = await createKey(gw, { name: 'alice', notes: HOSTILE_NOTES, requests_per_hour: 100, tokens_per_day: 100_000 });
  const bob = await createKey(gw, { name: 'bob', notes: 'team bob', usd_per_day: 5 });
  const carol = await createKey(gw, { name: 'carol', requests_per_hour: 2 });
  const expectStatus = async (p: Promise<{ status: number; text: string }>, status: number) => {
    const r = await p;
    if (r.status !== status) throw new Error(`expected ${status}, got ${r.status}: ${r.text}`);
  };
  for (let i = 0; i < 4; i++) await expectStatus(call(gw, alice.key), 200);
  await expectStatus(call(gw, alice.key, { headers: { 'x-mock-delay-ms': '120' } }), 200);
  await expectStatus(call(gw, alice.key, { headers: { 'x-mock-status': '500' } }), 500);
  for (let i = 0; i < 2; i++) await expectStatus(call(gw, bob.key, { body: chatRequest({ model: HOSTILE_MODEL }), headers: { 'x-mock-prompt-tokens': '1000', 'x-mock-completion-tokens': '500' } }), 200);
  for (let i = 0; i < 4; i++) await expectStatus(call(gw, carol.key), i < 2 ? 200 : 429);
  await gw.app.recorder.flush();
  return { gw, alice, bob, carol, adminKey: ADMIN_KEY, secrets: [ADMIN_KEY, alice.key, bob.key, carol.key] };
}
