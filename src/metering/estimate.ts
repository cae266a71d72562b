/**
 * Token estimates. Before a call: a fast estimate of what it may cost, meant as an upper bound,
 * used to reserve token and spend limits: the prompt is cut into the pieces a BPE tokenizer never
 * merges across (letter runs, digit groups of up to three, punctuation, whitespace), each piece
 * counted generously, and non-ASCII text at one token per two UTF-8 bytes; plus the completion
 * budget. It stays above the real count of cl100k_base and o200k_base for prose, CJK, code, JSON,
 * CSV and numbers (3 bytes per token, the earlier rule, was not: digits, dense code and Chinese
 * under cl100k all need more tokens than that). After a call that reported no usage (an aborted
 * stream, an upstream that does not report it): a real count with the tokenizer (gpt-tokenizer in a worker thread,
 * o200k_base).
 */
import { countTokensOf } from './tokenizer.js';
import type { TokenUsage } from '../contract.js';

const TOKENS_PER_IMAGE = 1_000;
/** What the chat format adds per message (3, plus the role; the estimate adds one for a `name`). */
const TOKENS_PER_MESSAGE = 4;
const ESTIMATED_TOKENS_PER_MESSAGE = 5;
/** The tokens that prime the assistant's reply, once per chat. */
const REPLY_PRIMING = 3;
/** Letters per token assumed for a run of ASCII letters (English words average 1.3 tokens for ~5.7 bytes). */
const LETTERS_PER_TOKEN = 4;

interface TextCount {
  images: number;
  messages: number;
  text: string[];
}

/** The keys under which a request body carries prompt text (messages, parts, tool calls, inputs). */
const TEXT_KEYS = ['content', 'text', 'input', 'prompt', 'instructions', 'arguments', 'output', 'name', 'tool_calls', 'function', 'refusal'] as const;

/** Collects the prompt text of a chat, responses, completions or embeddings body. */
function collect(value: unknown, into: TextCount, depth = 0): void {
  if (depth > 8 || value === null || value === undefined) return;
  if (typeof value === 'string') {
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
  for (const key of TEXT_KEYS) {
    if (key in part) collect(part[key], into, depth + 1);
  }
}

function promptText(body: Record<string, unknown>): TextCount {
  const count: TextCount = { images: 0, messages: 0, text: [] };
  for (const key of ['messages', 'input', 'prompt', 'instructions', 'system']) collect(body[key], count);
  if (body.tools !== undefined) count.text.push(JSON.stringify(body.tools));
  if (body.functions !== undefined) count.text.push(JSON.stringify(body.functions));
  return count;
}

const LETTER = 1;
const DIGIT = 2;
const SPACE = 3;
const SYMBOL = 4;
/** Character class of each ASCII code. */
const ASCII_CLASS = new Uint8Array(128).map((_, c) =>
  (c >= 97 && c <= 122) || (c >= 65 && c <= 90) ? LETTER : c >= 48 && c <= 57 ? DIGIT : c === 32 || (c >= 9 && c <= 13) ? SPACE : SYMBOL,
);

/**
 * An upper-bound token count of `text` without a tokenizer, in one pass. BPE tokenizers first
 * split text into pieces (a letter run with at most one leading space or symbol, up to three
 * digits, a punctuation run, a whitespace run) and never merge across them, so every piece is at
 * least one token; a piece is counted as one token per 4 letters (at least one), a punctuation
 * run as one token per character, and non-ASCII text at one token per 2 UTF-8 bytes.
 */
export function estimateTextTokens(text: string): number {
  let tokens = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) {
      let bytes = 0;
      for (; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d < 0x80) break;
        // UTF-8 length: 2 bytes below U+0800, 4 for a surrogate pair (counted at its high half), else 3.
        bytes += d < 0x800 ? 2 : d >= 0xdc00 && d <= 0xdfff ? 0 : d >= 0xd800 && d <= 0xdbff ? 4 : 3;
      }
      tokens += (bytes + 1) >> 1;
      continue;
    }
    const kind = ASCII_CLASS[c]!;
    const next = i + 1 < n ? text.charCodeAt(i + 1) : 0x80;
    if (kind === LETTER || (kind !== DIGIT && c !== 10 && c !== 13 && next < 0x80 && ASCII_CLASS[next] === LETTER)) {
      // A letter run, with its one leading space or symbol counted as a letter.
      let letters = 1;
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d >= 0x80 || ASCII_CLASS[d] !== LETTER) break;
        letters++;
      }
      tokens += Math.ceil(letters / LETTERS_PER_TOKEN);
    } else if (kind === DIGIT) {
      let digits = 0;
      for (; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d >= 0x80 || ASCII_CLASS[d] !== DIGIT) break;
        digits++;
      }
      tokens += Math.ceil(digits / 3);
    } else if (kind === SPACE) {
      for (; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d >= 0x80 || ASCII_CLASS[d] !== SPACE) break;
      }
      tokens += 1;
    } else {
      for (; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d >= 0x80 || ASCII_CLASS[d] !== SYMBOL) break;
        tokens++;
      }
    }
  }
  return tokens;
}

/**
 * The completion budget the request names, or `fallback`; times `n` choices. The gateway refuses
 * budgets out of range before it estimates (call/inspect.ts checkBudgetFields); this stays safe
 * on its own too: at most Number.MAX_SAFE_INTEGER.
 */
export function completionBudget(body: Record<string, unknown>, fallback: number): number {
  const named = [body.max_completion_tokens, body.max_tokens, body.max_output_tokens].find(
    (v): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0,
  );
  const n = typeof body.n === 'number' && Number.isInteger(body.n) && body.n > 1 ? body.n : 1;
  return Math.min(Number.MAX_SAFE_INTEGER, Math.ceil((named ?? fallback) * n));
}

/** Upper-bound estimate of a request's usage, for reservations. Cheap: no tokenizer. */
export function estimateUsage(body: unknown, defaultMaxTokens: number): TokenUsage {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return { promptTokens: 0, completionTokens: 0, cachedTokens: 0 };
  const record = body as Record<string, unknown>;
  const text = promptText(record);
  let promptTokens = text.images * TOKENS_PER_IMAGE;
  for (const part of text.text) promptTokens += estimateTextTokens(part);
  if (text.messages > 0) promptTokens += text.messages * ESTIMATED_TOKENS_PER_MESSAGE + REPLY_PRIMING;
  return { promptTokens, completionTokens: completionBudget(record, defaultMaxTokens), cachedTokens: 0 };
}

/** Counts tokens of `text` with the real tokenizer. */
export async function countTokens(text: string): Promise<number> {
  return (await countTokensOf([text]))[0]!;
}

/** Usage counted with the tokenizer: the request's prompt and the completion text delivered. */
export async function countUsage(body: unknown, completionText: string): Promise<TokenUsage> {
  let prompt = { text: [] as string[], images: 0, messages: 0 };
  if (body !== null && typeof body === 'object' && !Array.isArray(body)) prompt = promptText(body as Record<string, unknown>);
  const [promptCount, completionTokens] = await countTokensOf([prompt.text.join('\n'), completionText]);
  let promptTokens = promptCount! + prompt.images * TOKENS_PER_IMAGE;
  if (prompt.messages > 0) promptTokens += prompt.messages * TOKENS_PER_MESSAGE + REPLY_PRIMING;
  return { promptTokens, completionTokens: completionTokens!, cachedTokens: 0 };
}
