/**
 * fast-check generators for the property tests of body inspection and policy: JSON-ish request
 * bodies as raw text (so numbers arrive as written: 1e300, -0, 2^64; members may repeat; values
 * may nest deeply), the fields the gateway reads given arbitrary values, and request paths built
 * from ordinary segments and every traversal spelling. Also the runs' settings: a fixed seed
 * (HOSTILE_SEED overrides it; fast-check prints the seed and the shrunk case on a failure).
 */
import fc from 'fast-check';

export const SEED = Number(process.env.HOSTILE_SEED ?? 20_260_808);
export const settings = (numRuns: number): fc.Parameters<unknown> => ({ seed: SEED, numRuns, endOnFailure: true });

/** The top-level fields the gateway reads (or adds to) in a body. */
export const READ_FIELDS = ['model', 'stream', 'stream_options', 'n', 'max_tokens', 'max_completion_tokens', 'max_output_tokens', 'messages', 'input', 'prompt'] as const;
export const BUDGET_FIELDS = ['max_tokens', 'max_completion_tokens', 'max_output_tokens'] as const;

/** JSON number text, as a client may write it. */
export const rawNumber: fc.Arbitrary<string> = fc.oneof(
  fc.integer().map(String),
  fc.integer({ min: -1, max: 200 }).map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String),
  fc.constantFrom('1e300', '-1e300', '1e400', '-0', '0.0', '1E2', '1e-7', '9007199254740993', '99999999999999999999', '2147483647', '2147483648', '128', '129', '1.5'),
);

/** `depth` levels of arrays or objects around `inner`. */
export const nest = (depth: number, arrays: boolean, inner = 'null') =>
  arrays ? '['.repeat(depth) + inner + ']'.repeat(depth) : '{"a":'.repeat(depth) + inner + '}'.repeat(depth);

/** Nesting near and past the gateway's limit (128 levels, the body counted). */
export const deepValue: fc.Arbitrary<string> = fc.tuple(fc.integer({ min: 100, max: 300 }), fc.boolean()).map(([depth, arrays]) => nest(depth, arrays));

/** A JSON value as text: scalars, raw numbers, structures, message-like arrays, deep nesting. */
export const jsonValueText: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: rawNumber },
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
  { weight: 2, arbitrary: fc.constantFrom('null', 'true', 'false', '""', '"gpt-4o-mini"', '"gpt-4o"', '"o1"', '[]', '{}', '{"include_usage":true}', '"true"') },
  { weight: 2, arbitrary: fc.array(fc.record({ role: fc.jsonValue({ maxDepth: 1 }), content: fc.jsonValue({ maxDepth: 2 }) }, { requiredKeys: [] }), { maxLength: 3 }).map((m) => JSON.stringify(m)) },
  { weight: 1, arbitrary: deepValue },
);

/** A member key: mostly one the gateway reads, sometimes any string (never __proto__, which JSON.parse keeps as an own key but spreads do not). */
export const memberKey: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...READ_FIELDS, 'tools', 'metadata', 'seed', 'temperature') },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }).filter((k) => k !== '__proto__') },
);

/** Writes `key` as JSON text, sometimes spelled with \u escapes (the same key to a parser). */
export const keyText = (key: string, escaped: boolean): string =>
  escaped ? `"${[...key].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"` : JSON.stringify(key);

export interface Member {
  key: string;
  escaped: boolean;
  value: string;
}
export const member: fc.Arbitrary<Member> = fc.record({
  key: memberKey,
  escaped: fc.oneof({ weight: 5, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  value: jsonValueText,
});
export const members = (maxLength: number) => fc.array(member, { maxLength });
/** A JSON object's text from members (repeats kept: duplicate keys as raw text). */
export const objectText = (ms: readonly Member[]) => `{${ms.map((m) => `${keyText(m.key, m.escaped)}:${m.value}`).join(',')}}`;

/** A request body as raw text: an object of read fields (often around a valid chat), any JSON, or garbage. */
export const bodyText: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: members(6).map(objectText) },
  {
    weight: 5,
    arbitrary: members(3).map((ms) => objectText([{ key: 'model', escaped: false, value: '"gpt-4o-mini"' }, { key: 'messages', escaped: false, value: '[{"role":"user","content":"hi"}]' }, ...ms])),
  },
  { weight: 2, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
);

/** Path segments: ordinary ones, and every spelling of a dot segment, slash or backslash. */
export const segment: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('v1', 'chat', 'completions', 'models', 'embeddings', 'responses', 'gpt-4o', 'admin', 'keys', 'ratelimit', 'healthz') },
  {
    weight: 4,
    arbitrary: fc.constantFrom('..', '.', '%2e%2e', '%2E%2e', '.%2e', '%2e', '%252e%252e', '%25252e%25252e', '%5c..', '\\..', '..\\', '%2f..', '..%2f', '%c0%ae%c0%ae', '%e0%80%ae', '%00', '', '..;', '%ef%bc%8e%ef%bc%8e', '%zz'),
  },
  { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9._~-]{1,8}$/) },
);
export const requestPath: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom('/', '/v1/', '/v1/models/', '/v1/chat/', '/v1/chat/completions'),
    fc.array(segment, { maxLength: 5 }),
    fc.option(fc.constantFrom('?a=1', '?x=../..', '?%2e%2e'), { nil: '' }),
  )
  .map(([prefix, segments, query]) => `${prefix}${segments.join('/')}${query}`);
export const method = fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS');

/** Requests the gateway forwards, as method and path. */
const FORWARDED = [
  ['POST', '/v1/chat/completions'],
  ['POST', '/v1/embeddings'],
  ['GET', '/v1/models'],
  ['GET', '/v1/models/gpt-4o'],
] as const;

/**
 * A method and a path: any method with a path built from segments, or a forwarded request with
 * up to two segments (traversals included) inserted anywhere in its path.
 */
export const requestLine: fc.Arbitrary<[string, string]> = fc.oneof(
  { weight: 2, arbitrary: fc.tuple(method, requestPath) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(...FORWARDED), fc.array(fc.tuple(fc.nat(), segment), { maxLength: 2 }), fc.option(fc.constantFrom('?a=1', '?x=../..'), { nil: '' }))
      .map(([[verb, path], inserts, query]): [string, string] => {
        const parts = path.split('/');
        for (const [at, seg] of inserts) parts.splice(1 + (at % parts.length), 0, seg);
        return [verb, parts.join('/') + query];
      }),
  },
);

/** Repeatedly percent-decodes `path` as the input rules do (at most 4 rounds; null when malformed). */
export function decodedPath(path: string): string | null {
  let decoded = path;
  for (let i = 0; i < 4 && decoded.includes('%'); i++) {
    try {
      decoded = decodeURIComponent(decoded);
    } catch {
      return null;
    }
  }
  return decoded;
}

/** Whether `path` (without its query) holds a dot segment, a backslash or an encoded one, as any reader may decode it. */
export function hasTraversal(path: string): boolean {
  const bare = path.split('?')[0]!;
  const decoded = decodedPath(bare);
  if (decoded === null) return true;
  if (decoded.includes('\\') || decoded.includes('\0')) return true;
  if (decoded.split('/').some((s) => s === '..' || s === '.')) return true;
  // A WHATWG URL parser (what an upstream or a proxy may use) resolves %2e and backslashes too.
  const resolved = new URL(bare, 'http://upstream.invalid').pathname;
  return resolved.split('/').length !== bare.split('/').length;
}
