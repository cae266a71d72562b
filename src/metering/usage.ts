/**
 * Token usage as upstreams report it, normalised: chat completions and embeddings
 * (`prompt_tokens`, `completion_tokens`, `prompt_tokens_details.cached_tokens`) and the Responses
 * API (`input_tokens`, `output_tokens`, `input_tokens_details.cached_tokens`).
 */

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  /** Part of promptTokens served from the upstream's prompt cache (cheaper). */
  cachedTokens: number;
}

export const totalTokens = (u: TokenUsage): number => u.promptTokens + u.completionTokens;

const count = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.round(v) : 0);

/** Reads a `usage` object in any of the known shapes; null when it is not one. */
export function parseUsage(usage: unknown): TokenUsage | null {
  if (usage === null || typeof usage !== 'object') return null;
  const u = usage as Record<string, unknown>;
  if ('prompt_tokens' in u || 'completion_tokens' in u) {
    const details = u.prompt_tokens_details as Record<string, unknown> | undefined;
    return { promptTokens: count(u.prompt_tokens), completionTokens: count(u.completion_tokens), cachedTokens: count(details?.cached_tokens) };
  }
  if ('input_tokens' in u || 'output_tokens' in u) {
    const details = u.input_tokens_details as Record<string, unknown> | undefined;
    return { promptTokens: count(u.input_tokens), completionTokens: count(u.output_tokens), cachedTokens: count(details?.cached_tokens) };
  }
  return null;
}

/** Usage from a complete JSON response body (chat, embeddings, responses). */
export function usageFromJson(body: unknown): TokenUsage | null {
  if (body === null || typeof body !== 'object') return null;
  const b = body as Record<string, unknown>;
  return parseUsage(b.usage) ?? parseUsage((b.response as Record<string, unknown> | undefined)?.usage);
}
