/**
 * Token estimates. Before a call: a fast upper-bound estimate of what it may cost (prompt text at
 * 3 bytes per token, which over-counts English and CJK alike, plus the completion budget), used to
 * reserve token and spend limits. After a call that reported no usage (an aborted stream, an
 * upstream that does not report it): a real count with the tokenizer (js-tiktoken, o200k_base).
 */
import type { Tiktoken } from 'js-tiktoken';
import type { TokenUsage } from './usage.js';

const BYTES_PER_TOKEN_BOUND = 3;
const TOKENS_PER_IMAGE = 1_000;
const TOKENS_PER_MESSAGE = 4;

interface TextCount {
  bytes: number;
  images: number;
  messages: number;
  text: string[];
}

/** Collects the prompt text of a chat, responses, completions or embeddings body. */
function collect(value: unknown, into: TextCount, depth = 0): void {
  if (depth > 6 || value === null || value === undefined) return;
  if (typeof value === 'string') {
    into.bytes += Buffer.byteLength(value, 'utf8');
    into.text.push(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const item of value) collect(item, into, depth + 1);
    return;
  }
  if (typeof value !== 'object') return;
  const part = value as Record<string, unknown>;
  if (part.type === 'image_url' || part.type === 'input_image' || part.image_url !== undefined) {
    into.images++;
    return;
  }
  if ('role' in part) into.messages++;
  for (const key of ['content', 'text', 'input', 'prompt', 'instructions', 'arguments', 'output'] as const) {
    if (key in part) collect(part[key], into, depth + 1);
  }
}

function promptText(body: Record<string, unknown>): TextCount {
  const count: TextCount = { bytes: 0, images: 0, messages: 0, text: [] };
  for (const key of ['messages', 'input', 'prompt', 'instructions', 'system']) collect(body[key], count);
  if (body.tools !== undefined) {
    const tools = JSON.stringify(body.tools);
    count.bytes += Buffer.byteLength(tools);
    count.text.push(tools);
  }
  return count;
}

/** The completion budget the request names, or `fallback`; times `n` choices. */
export function completionBudget(body: Record<string, unknown>, fallback: number): number {
  const named = [body.max_completion_tokens, body.max_tokens, body.max_output_tokens].find(
    (v): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0,
  );
  const n = typeof body.n === 'number' && Number.isInteger(body.n) && body.n > 1 ? body.n : 1;
  return Math.ceil((named ?? fallback) * n);
}

/** Upper-bound estimate of a request's usage, for reservations. Cheap: no tokenizer. */
export function estimateUsage(body: unknown, defaultMaxTokens: number): TokenUsage {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return { promptTokens: 0, completionTokens: 0, cachedTokens: 0 };
  const record = body as Record<string, unknown>;
  const text = promptText(record);
  const promptTokens = Math.ceil(text.bytes / BYTES_PER_TOKEN_BOUND) + text.images * TOKENS_PER_IMAGE + text.messages * TOKENS_PER_MESSAGE;
  return { promptTokens, completionTokens: completionBudget(record, defaultMaxTokens), cachedTokens: 0 };
}

let encoder: Tiktoken | null = null;
async function tokenizer(): Promise<Tiktoken> {
  if (encoder === null) {
    const { getEncoding } = await import('js-tiktoken');
    encoder = getEncoding('o200k_base');
  }
  return encoder;
}

/** Counts tokens of `text` with the real tokenizer. */
export async function countTokens(text: string): Promise<number> {
  if (text.length === 0) return 0;
  return (await tokenizer()).encode(text).length;
}

/** Usage counted with the tokenizer: the request's prompt and the completion text delivered. */
export async function countUsage(body: unknown, completionText: string): Promise<TokenUsage> {
  let promptTokens = 0;
  if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
    const text = promptText(body as Record<string, unknown>);
    promptTokens = (await countTokens(text.text.join('\n'))) + text.images * TOKENS_PER_IMAGE + text.messages * TOKENS_PER_MESSAGE;
  }
  return { promptTokens, completionTokens: await countTokens(completionText), cachedTokens: 0 };
}
