/**
 * Property tests of the inspection and policy functions themselves (no server), each against an
 * oracle written from the README's rules rather than from the code:
 * - the input rules and the endpoint policy together: a path they let through has no traversal
 *   any reader could resolve (the policy matches text, so it relies on the input rules for that:
 *   shown by the paths the policy alone would allow);
 * - checkBudgetFields: refuses (400 naming the field) exactly the budgets that are not whole
 *   numbers from 0 to 2,147,483,647 (n: 1 to 128), null meaning "not named"; what it lets through
 *   estimates to safe, bounded integers;
 * - scanJsonText: "too deep" exactly past 128 levels, and the first top-level key sent twice,
 *   however it is spelled (\u escapes);
 * - upstreamBody: adds include_usage and the completion cap by splicing: every other member goes
 *   up byte for byte (big numbers keep their digits), and the result parses to the client's body
 *   plus the additions.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Policy } from '../../src/policy/policy.js';
import type { EndpointRule } from '../../src/config.js';
import { MAX_JSON_DEPTH, unsafePathReason } from '../../src/http/request-input.js';
import { checkBudgetFields, upstreamBody } from '../../src/call/inspect.js';
import { scanJsonText } from '../../src/call/json-bytes.js';
import { completionBudget, estimateUsage } from '../../src/metering/estimate.js';
import { ApiError } from '../../src/errors.js';
import { BUDGET_FIELDS, hasTraversal, jsonValueText, keyText, memberKey, method, nest, objectText, rawNumber, requestPath, settings, type Member } from './arbitraries.js';

const MAX_COUNT = 2_147_483_647;

describe('input rules and endpoint policy', () => {
  const rules: EndpointRule[] = [
    { method: 'POST', path: '/v1/chat/completions' },
    { method: 'GET', path: '/v1/models' },
    { method: 'GET', path: '/v1/models/*' },
    { method: 'POST', path: '/v1/files/*' },
  ];
  const policy = new Policy(rules, null);

  it('a path the input rules and the policy let through has no traversal a reader could resolve', () => {
    let policyAloneAllowsTraversal = 0;
    let allowed = 0;
    fc.assert(
      fc.property(method, requestPath, (verb, path) => {
        const bare = path.split('?')[0]!;
        const byPolicy = policy.endpointAllowed(verb, bare);
        if (byPolicy && hasTraversal(path)) policyAloneAllowsTraversal++;
        if (unsafePathReason(path) !== null || !byPolicy) return;
        allowed++;
        expect(hasTraversal(path), path).toBe(false);
      }),
      settings(3000),
    );
    // Not vacuous: some paths pass, and the policy alone (text matching) would let traversals through.
    expect(allowed).toBeGreaterThan(20);
    expect(policyAloneAllowsTraversal).toBeGreaterThan(0);
  });

  it('a prefix rule never covers the prefix itself, or a sibling that shares its letters', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z.-]{0,6}$/), (tail) => {
        expect(policy.endpointAllowed('GET', `/v1/models${tail}`)).toBe(tail === '');
        expect(policy.endpointAllowed('GET', `/v1/models/${tail}`)).toBe(tail !== '');
      }),
      settings(500),
    );
  });
});

/** The README's rule for a budget field's value (null or absent: not named). */
const validBudget = (field: string, v: unknown): boolean =>
  v === undefined || v === null || (typeof v === 'number' && Number.isInteger(v) && (field === 'n' ? v >= 1 && v <= 128 : v >= 0 && v <= MAX_COUNT));

describe('checkBudgetFields', () => {
  const budgetValue = fc.oneof(rawNumber.map((t) => JSON.parse(t) as number), fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined));
  const budgets = fc.record(
    { max_tokens: budgetValue, max_completion_tokens: budgetValue, max_output_tokens: budgetValue, n: budgetValue, model: fc.jsonValue({ maxDepth: 1 }) },
    { requiredKeys: [] },
  );

  it('refuses exactly the invalid budgets (400 naming one of them); what passes estimates to bounded safe integers', () => {
    fc.assert(
      fc.property(budgets, (body) => {
        const invalid = [...BUDGET_FIELDS, 'n'].filter((f) => !validBudget(f, (body as Record<string, unknown>)[f]));
        let thrown: unknown = null;
        try {
          checkBudgetFields(body as Record<string, unknown>);
        } catch (err) {
          thrown = err;
        }
        if (invalid.length > 0) {
          expect(thrown).toBeInstanceOf(ApiError);
          const error = thrown as ApiError;
          expect(error.statusCode).toBe(400);
          expect(error.code).toBe('invalid_request');
          expect(invalid).toContain(error.param);
          expect(error.message).toContain(error.param!);
          return;
        }
        expect(thrown).toBeNull();
        const budget = completionBudget(body as Record<string, unknown>, 1024);
        expect(Number.isSafeInteger(budget) && budget >= 0 && budget <= MAX_COUNT * 128, String(budget)).toBe(true);
        const usage = estimateUsage(body, 1024);
        for (const n of [usage.promptTokens, usage.completionTokens, usage.cachedTokens]) expect(Number.isSafeInteger(n) && n >= 0).toBe(true);
      }),
      settings(1000),
    );
  });
});

/** Depth of a parsed JSON value (the value itself is level 1 when it is an array or object). */
function depthOf(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  const children = Array.isArray(value) ? value : Object.values(value);
  return 1 + children.reduce<number>((deepest, child) => Math.max(deepest, depthOf(child)), 0);
}

describe('scanJsonText', () => {
  it(`is "too deep" exactly past ${MAX_JSON_DEPTH} levels, whatever the JSON`, () => {
    fc.assert(
      fc.property(fc.json({ maxDepth: 4 }), fc.integer({ min: 0, max: 200 }), fc.boolean(), (inner, levels, arrays) => {
        const text = nest(levels, arrays, inner);
        const depth = levels + depthOf(JSON.parse(inner));
        expect(scanJsonText(Buffer.from(text), MAX_JSON_DEPTH).tooDeep).toBe(depth > MAX_JSON_DEPTH);
      }),
      settings(1000),
    );
  });

  it('names the first top-level key sent twice, however it is spelled, and only top-level ones', () => {
    const ms = fc.array(fc.record({ key: memberKey, escaped: fc.boolean(), value: jsonValueText.filter((v) => v.length < 2000) }), { maxLength: 8 });
    fc.assert(
      fc.property(ms, (list: Member[]) => {
        const seen = new Set<string>();
        let first: string | null = null;
        for (const m of list) {
          if (first === null && seen.has(m.key)) first = m.key;
          seen.add(m.key);
        }
        const text = objectText(list);
        const scan = scanJsonText(Buffer.from(text), 10_000);
        expect(scan.duplicateKey).toBe(first);
        // The same members one level down are no top-level repeats.
        expect(scanJsonText(Buffer.from(`{"wrap":${text}}`), 10_000).duplicateKey).toBeNull();
      }),
      settings(1000),
    );
  });
});

describe('upstreamBody', () => {
  /** Members with distinct keys (the gateway refuses repeats before it gets here). */
  const distinct = fc.uniqueArray(fc.record({ key: memberKey, escaped: fc.constant(false), value: jsonValueText.filter((v) => v.length < 2000) }), {
    selector: (m) => m.key,
    maxLength: 8,
  });

  it('splices in include_usage and the cap; every other member goes up byte for byte', () => {
    fc.assert(
      fc.property(
        distinct,
        fc.boolean(),
        fc.constantFrom('/chat/completions', '/responses', '/completions', '/embeddings'),
        fc.option(fc.integer({ min: 1, max: 1_000_000 }), { nil: null }),
        (list, stream, path, cap) => {
          const members = stream ? [...list.filter((m) => m.key !== 'stream'), { key: 'stream', escaped: false, value: 'true' }] : list;
          const text = objectText(members);
          const json = JSON.parse(text) as Record<string, unknown>;
          const options = json.stream_options;
          const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
          const askUsage = stream && path === '/chat/completions' && !(isObject(options) && options.include_usage === true);
          const capField = ({ '/chat/completions': 'max_completion_tokens', '/responses': 'max_output_tokens', '/completions': 'max_tokens' } as Record<string, string>)[path];
          const capped = cap !== null && capField !== undefined && !BUDGET_FIELDS.some((f) => typeof json[f] === 'number');
          const model = typeof json.model === 'string' ? json.model : null;

          const out = upstreamBody(path, { model, stream, json }, Buffer.from(text), cap);
          const sent = Buffer.from(out.body as Buffer).toString('utf8');
          expect(out.strip).toBe(askUsage);
          if (!askUsage && !capped) return void expect(sent).toBe(text);

          const expected: Record<string, unknown> = { ...json };
          if (askUsage) expected.stream_options = isObject(options) ? { ...options, include_usage: true } : { include_usage: true };
          if (capped) expected[capField!] = cap;
          expect(JSON.parse(sent)).toEqual(expected);
          expect(scanJsonText(Buffer.from(sent), 10_000).duplicateKey).toBeNull();
          const replaced = new Set([...(askUsage ? ['stream_options'] : []), ...(capped ? [capField!] : [])]);
          for (const m of members) if (!replaced.has(m.key)) expect(sent).toContain(`${keyText(m.key, false)}:${m.value}`);
        },
      ),
      settings(1000),
    );
  });
});
