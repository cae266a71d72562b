/**
 * Usage totals from grouped rows (one per principal and status), the same way for every store:
 * summed group by group in the order the rows come, so the float sum of `usd` agrees between
 * backends that return the same groups in the same order.
 */
import type { UsageTotals } from '../contract.js';

/** One group of usage records: a principal's calls with one status. */
export interface UsageGroup {
  principal: string;
  status: number;
  /** Calls, prompt tokens, completion tokens, cost in micro-dollars. */
  n: number;
  p: number;
  c: number;
  cost: number;
}

export const emptyTotals = (): UsageTotals => ({ requests: 0, promptTokens: 0, completionTokens: 0, usd: 0, byStatus: {} });

/** The totals overall and per principal of `groups` (optionally of one principal only). */
export function sumUsageGroups(groups: Iterable<UsageGroup>, principal?: string): { total: UsageTotals; byPrincipal: Record<string, UsageTotals> } {
  const total = emptyTotals();
  const byPrincipal: Record<string, UsageTotals> = {};
  for (const row of groups) {
    if (principal !== undefined && row.principal !== principal) continue;
    const own = (byPrincipal[row.principal] ??= emptyTotals());
    for (const t of [total, own]) {
      t.requests += row.n;
      t.promptTokens += row.p;
      t.completionTokens += row.c;
      t.usd += row.cost / 1e6;
      t.byStatus[String(row.status)] = (t.byStatus[String(row.status)] ?? 0) + row.n;
    }
  }
  return { total, byPrincipal };
}
