/**
 * What the request path reads from a call's body, and what it changes before sending it on.
 * Inspection: the model (JSON field or multipart form field) and the stream flag, for the model
 * policy and for metering. The upstream body: the client's bytes as they came, unless the gateway
 * must ask for the stream's usage chunk, cap the completion at what a key reserved, or give the
 * model the name its upstream knows it by.
 */
import type { FastifyRequest } from 'fastify';
import { invalidRequest } from '../errors.js';
import { MAX_TOKEN_COUNT } from '../metering/usage.js';
import { appendTopLevelMembers, editObject, objectMembers, replaceValue, setTopLevelMembers, topLevelObject } from './json-bytes.js';

/** What the policy and the meter need to know about a call's body. */
export interface CallBody {
  model: string | null;
  stream: boolean;
  /** The parsed JSON object (to estimate and count the prompt), or null for bodiless and multipart requests. */
  json: Record<string, unknown> | null;
}

const NO_BODY: CallBody = Object.freeze({ model: null, stream: false, json: null });

export function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

export function searchOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? '' : url.slice(q);
}

/** Reads the model and stream flag of a request's body (400 when they are not what OpenAI takes). */
export async function inspectBody(request: FastifyRequest): Promise<CallBody> {
  if (request.rawBody === null) return NO_BODY;
  const contentType = String(request.headers['content-type'] ?? '');
  if (contentType.toLowerCase().startsWith('multipart/form-data')) {
    let form: FormData;
    try {
      form = await new Response(request.rawBody, { headers: { 'content-type': contentType } }).formData();
    } catch {
      throw invalidRequest('The multipart body could not be parsed.');
    }
    // Upstreams disagree on which copy of a repeated field counts: one model field, or none.
    const models = form.getAll('model');
    if (models.length > 1) throw invalidRequest('The model field must be sent once.', 'model');
    const model = models[0] ?? null;
    if (model !== null && typeof model !== 'string') throw invalidRequest('The model field must be text.', 'model');
    return { model, stream: form.get('stream') === 'true', json: null };
  }
  const body = request.body;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalidRequest('The request body must be a JSON object.');
  const json = body as Record<string, unknown>;
  if (json.model !== undefined && typeof json.model !== 'string') throw invalidRequest('model must be a string.', 'model');
  return { model: (json.model as string | undefined) ?? null, stream: json.stream === true, json };
}

/** Most choices (`n`) one request may ask for: OpenAI's own maximum. */
const MAX_CHOICES = 128;
const BUDGET_FIELDS = ['max_tokens', 'max_completion_tokens', 'max_output_tokens'] as const;

/**
 * For a caller with token or spend limits: the numbers its reservation is computed from must be
 * sane, or the request is a 400 naming the field (before anything is reserved). The completion
 * caps must be whole numbers from 0 to MAX_TOKEN_COUNT and `n` from 1 to 128; null stands for
 * "not named". (A valid budget larger than the key's limits is the limiter's 429.)
 */
export function checkBudgetFields(json: Record<string, unknown>): void {
  for (const field of BUDGET_FIELDS) {
    const v = json[field];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_TOKEN_COUNT) {
      throw invalidRequest(`${field} must be a whole number from 0 to ${MAX_TOKEN_COUNT} (got ${describe(v)}).`, field);
    }
  }
  const n = json.n;
  if (n !== undefined && n !== null && (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_CHOICES)) {
    throw invalidRequest(`n must be a whole number from 1 to ${MAX_CHOICES} (got ${describe(n)}).`, 'n');
  }
}

/** What a refused value was, without echoing text or structures back. */
function describe(v: unknown): string {
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'a number too large for JSON';
  return Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** The body field that caps the completion, by upstream endpoint (the path below /v1). */
const COMPLETION_CAP_FIELD: Record<string, string> = {
  '/chat/completions': 'max_completion_tokens',
  '/responses': 'max_output_tokens',
  '/completions': 'max_tokens',
};
const CAP_FIELDS = BUDGET_FIELDS;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * The body to send to the upstream's `path` (below /v1): the client's bytes as they came, unless
 * the gateway must add to them.
 * - A streamed chat completion asks the upstream for the usage chunk (hidden again from a client
 *   that did not ask for it: `strip`).
 * - A key with token or spend limits gets the completion budget it reserved (`capTokens`) as the
 *   request's cap when the client named none, so what it settles can never exceed what it reserved.
 * - An upstream that serves the model under another name (`model`) gets that name.
 * The additions are spliced into the client's bytes (json-bytes.ts): every other value goes up
 * exactly as the client wrote it, and the gateway's copy of an added member is the only one.
 */
export function upstreamBody<Raw extends Buffer | string | null>(
  path: string,
  body: CallBody,
  raw: Raw,
  capTokens: number | null,
  /** The model the upstream serves the client's under (a rename); null: the client's, unchanged. */
  model: string | null = null,
): { body: Raw | Buffer; strip: boolean } {
  const json = body.json;
  if (json === null || raw === null) return { body: raw, strip: false };
  const options = json.stream_options;
  const askUsage = body.stream && path === '/chat/completions' && !(isObject(options) && options.include_usage === true);
  const capField = COMPLETION_CAP_FIELD[path];
  const cap = capTokens !== null && capField !== undefined && !CAP_FIELDS.some((f) => typeof json[f] === 'number');
  const rename = model !== null && json.model !== model;
  if (!askUsage && !cap && !rename) return { body: raw, strip: false };

  const bytes: Buffer = typeof raw === 'string' ? Buffer.from(raw) : (raw as Buffer);
  if (!rename && (!askUsage || !Object.hasOwn(json, 'stream_options')) && (!cap || !Object.hasOwn(json, capField))) {
    // The common case: nothing of the client's to replace. `json` was parsed from these bytes,
    // which repeat no key (refused before admission), so it names every top-level member: none of
    // the added ones is there, and they go in before the closing brace without a scan of the body.
    const added: string[] = [];
    if (askUsage) added.push(`"stream_options":${INCLUDE_USAGE}`);
    if (cap) added.push(`${JSON.stringify(capField)}:${capTokens}`);
    const appended = appendTopLevelMembers(bytes, hasOwnMembers(json), added);
    if (appended !== null) return { body: appended, strip: askUsage };
  }
  const top = topLevelObject(bytes);
  if (top === null) return { body: raw, strip: false }; // not the object `json` was parsed from: nothing to add to
  const set = new Map<string, string>();
  if (askUsage) {
    // The client's own options (the last copy: the one `json` holds) with include_usage on.
    const last = isObject(options) ? top.members.findLast((m) => m.key === 'stream_options') : undefined;
    const own = last === undefined ? null : objectMembers(bytes, last.valueStart);
    set.set('stream_options', own === null ? INCLUDE_USAGE : editObject(bytes, own, INCLUDE_USAGE_KEY, [INCLUDE_USAGE_MEMBER]).toString('utf8'));
  }
  if (cap) set.set(capField, String(capTokens));
  if (!rename) return { body: setTopLevelMembers(bytes, top, set), strip: askUsage };
  // The model's value replaced where it stands: every other byte stays where the client put it.
  const own = top.members.findLast((m) => m.key === 'model');
  if (own === undefined) set.set('model', JSON.stringify(model));
  const renamed = own === undefined ? bytes : replaceValue(bytes, own, JSON.stringify(model));
  if (set.size === 0) return { body: renamed, strip: askUsage };
  return { body: setTopLevelMembers(renamed, own === undefined ? top : topLevelObject(renamed)!, set), strip: askUsage };
}

/** Whether an object parsed from JSON has a member (JSON.parse makes only own, enumerable ones). */
function hasOwnMembers(json: Record<string, unknown>): boolean {
  for (const key in json) if (Object.hasOwn(json, key)) return true;
  return false;
}

const INCLUDE_USAGE_MEMBER = '"include_usage":true';
const INCLUDE_USAGE = `{${INCLUDE_USAGE_MEMBER}}`;
const INCLUDE_USAGE_KEY: ReadonlySet<string> = new Set(['include_usage']);
