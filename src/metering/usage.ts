/**
 * Token usage as upstreams report it, normalised: chat completions and embeddings
 * (`prompt_tokens`, `completion_tokens`, `prompt_tokens_details.cached_tokens`) and the Responses
 * API (`input_tokens`, `output_tokens`, `input_tokens_details.cached_tokens`).
 */
import type { TokenUsage } from '../contract.js';

/**
 * The largest count of one kind the gateway accepts or records for one call (2^31 - 1): a request
 * naming a larger completion budget is refused, a larger reported count is clamped to it. Far
 * beyond any model's window, and small enough that sums and prices stay exact integers.
 */
export const MAX_TOKEN_COUNT = 2_147_483_647;

export const totalTokens = (u: TokenUsage): number => u.promptTokens + u.completionTokens;

/**
 * A reported count as a whole number in 0..MAX_TOKEN_COUNT. Missing and null are 0; anything else
 * out of range (negative, fractional, too large, not finite, text, another type) is clamped (a
 * numeric text read as its number) and its field noted in `clamped`.
 */
function count(v: unknown, field: string, clamped: string[]): number {
  if (v === undefined || v === null) return 0;
  if (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= MAX_TOKEN_COUNT) return v as number;
  let n: number;
  if (typeof v === 'number') {
    n = v;
    clamped.push(`${field}: ${Number.isNaN(v) ? 'not a number' : v < 0 ? 'negative' : v > MAX_TOKEN_COUNT ? 'too large' : 'not a whole number'}`);
  } else if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) {
    n = Number(v);
    clamped.push(`${field}: a number sent as text`);
  } else {
    clamped.push(`${field}: not a number (${typeof v})`);
    return 0;
  }
  return Number.isNaN(n) ? 0 : Math.min(MAX_TOKEN_COUNT, Math.max(0, Math.round(n)));
}

function usageOf(prompt: unknown, completion: unknown, cached: unknown, names: [string, string, string]): TokenUsage {
  const clamped: string[] = [];
  const usage: TokenUsage = {
    promptTokens: count(prompt, names[0], clamped),
    completionTokens: count(completion, names[1], clamped),
    cachedTokens: count(cached, names[2], clamped),
  };
  if (clamped.length > 0) usage.clamped = clamped;
  return usage;
}

const detailsOf = (v: unknown): Record<string, unknown> | undefined => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : undefined);

/** Reads a `usage` object in any of the known shapes; null when it is not one. */
export function parseUsage(usage: unknown): TokenUsage | null {
  if (usage === null || typeof usage !== 'object') return null;
  const u = usage as Record<string, unknown>;
  if ('prompt_tokens' in u || 'completion_tokens' in u) {
    const cached = detailsOf(u.prompt_tokens_details)?.cached_tokens;
    return usageOf(u.prompt_tokens, u.completion_tokens, cached, ['prompt_tokens', 'completion_tokens', 'cached_tokens']);
  }
  if ('input_tokens' in u || 'output_tokens' in u) {
    const cached = detailsOf(u.input_tokens_details)?.cached_tokens;
    return usageOf(u.input_tokens, u.output_tokens, cached, ['input_tokens', 'output_tokens', 'cached_tokens']);
  }
  return null;
}

/** Usage from a complete JSON response body (chat, embeddings, responses). */
export function usageFromJson(body: unknown): TokenUsage | null {
  if (body === null || typeof body !== 'object') return null;
  const b = body as Record<string, unknown>;
  return parseUsage(b.usage) ?? parseUsage((b.response as Record<string, unknown> | undefined)?.usage);
}
