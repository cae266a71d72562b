/**
 * GET /admin/upstreams: each upstream and each of its keys as the gateway sees it now (this
 * process): healthy, its breaker open (until when), half-open (a probe may go or is out), or
 * sitting out a 429 (until when); consecutive failures, counts, and the last error as a status or
 * an error code. A key is shown only as its last 4 characters and the variable it came from.
 */
import type { UpstreamRouter } from '../upstreams/router.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function upstreamsView(router: UpstreamRouter) {
  return {
    object: 'list',
    attempts: router.policy.attempts,
    data: router.view().map((u) => ({
      name: u.name,
      kind: u.kind,
      base_url: u.baseUrl,
      weight: u.weight,
      timeout_ms: u.timeoutMs,
      models: u.models,
      keys: u.keys.map((k) => ({
        key: k.key,
        source: k.source === '' ? null : k.source,
        state: k.state,
        until: iso(k.until),
        consecutive_failures: k.consecutiveFailures,
        served: k.served,
        failed: k.failed,
        last_error: k.lastError === null ? null : { at: iso(k.lastError.at), message: k.lastError.message },
      })),
    })),
  };
}
