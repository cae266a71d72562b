/**
 * The Redactor's rules, one by one (what test/security/redaction.test.ts does not pin down): a
 * secret that contains another is removed whole whatever order they were configured in; secrets
 * with regular-expression characters are matched literally; the token patterns (Bearer in any
 * case, `sk-`, `pgpt-`) and where they stop; credential property names censored at any depth in
 * any case, except null/undefined values; the depth limit (`[Truncated]`, never a leak); errors
 * without code, cause or stack; and `needed()`.
 */
import { describe, expect, it } from 'vitest';
import { Redactor } from '../../src/redact.js';

/** `leaf` nested `levels` objects deep: { next: { next: ... leaf } }. */
function nest(levels: number, leaf: unknown): unknown {
  let value = leaf;
  for (let i = 0; i < levels; i++) value = { next: value };
  return value;
}

/** Follows `next` `levels` times. */
function dig(value: unknown, levels: number): unknown {
  let v = value;
  for (let i = 0; i < levels; i++) v = (v as { next: unknown }).next;
  return v;
}

describe('secrets that contain one another', () => {
  const short = 'plain-key-77';
  const long = 'my-plain-key-77-extended';

  it.each([
    ['short first', [short, long]],
    ['long first', [long, short]],
  ])('the longer one is removed whole (%s)', (_order, secrets) => {
    const redactor = new Redactor(secrets);
    expect(redactor.text(`a ${long} b ${short} c ${long}`)).toBe('a [REDACTED] b [REDACTED] c [REDACTED]');
    expect(redactor.text(`${long}${short}`)).toBe('[REDACTED][REDACTED]');
  });

  it('three nested secrets in any order', () => {
    const secrets = ['abc', 'xxabcxx', 'yy-xxabcxx-yy'];
    for (const order of [secrets, [...secrets].reverse(), [secrets[1]!, secrets[0]!, secrets[2]!]]) {
      const redactor = new Redactor(order);
      expect(redactor.text('1 yy-xxabcxx-yy 2 xxabcxx 3 abc 4'), order.join(',')).toBe('1 [REDACTED] 2 [REDACTED] 3 [REDACTED] 4');
    }
  });
});

describe('secrets with regular-expression characters', () => {
  const special = 'k.e*y+?^${}()|[]\\/-end';

  it('are found and removed literally (and the Redactor can be built at all)', () => {
    const redactor = new Redactor([special, 'dot.star*plus+secret']);
    expect(redactor.needed(`x ${special} y`)).toBe(true);
    expect(redactor.text(`x ${special} y ${special}`)).toBe('x [REDACTED] y [REDACTED]');
    expect(redactor.text('dot.star*plus+secret')).toBe('[REDACTED]');
  });

  it('are not read as patterns: text they would match as a pattern is left alone', () => {
    const redactor = new Redactor(['dot.star*plus+secret', 'a|b-secret']);
    for (const text of ['dotXstaplusssssecret', 'dotXstarrrrplussecret', 'a', 'b-secret', 'ab-secret']) {
      expect(redactor.needed(text), text).toBe(false);
      expect(redactor.text(text)).toBe(text);
    }
  });
});

describe('token patterns', () => {
  const redactor = new Redactor([]);

  it('Bearer in any case, always written back as "Bearer [REDACTED]"', () => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
      expect(redactor.text(`authorization: ${scheme} some.opaque_token-123`), scheme).toBe('authorization: Bearer [REDACTED]');
    }
    expect(redactor.text('Bearer\ttab-separated')).toBe('Bearer [REDACTED]');
    expect(redactor.text('Bearer one then Bearer two')).toBe('Bearer [REDACTED] then Bearer [REDACTED]');
  });

  it('a Bearer token ends at whitespace, quotes, commas and semicolons', () => {
    expect(redactor.text('Bearer tok rest')).toBe('Bearer [REDACTED] rest');
    expect(redactor.text('{"authorization":"Bearer tok","x":1}')).toBe('{"authorization":"Bearer [REDACTED]","x":1}');
    expect(redactor.text("h='Bearer tok'")).toBe("h='Bearer [REDACTED]'");
    expect(redactor.text('Bearer tok,next')).toBe('Bearer [REDACTED],next');
    expect(redactor.text('Bearer tok;next')).toBe('Bearer [REDACTED];next');
  });

  it('"Bearer" inside a word or without a token is no token', () => {
    for (const text of ['unBearer tok', 'Bearer', 'the Bearer, of news']) expect(redactor.text(text), text).toBe(text);
  });

  it('sk- and pgpt- keys of six characters or more, as a whole word', () => {
    expect(redactor.text('key sk-abcdef here')).toBe('key [REDACTED] here');
    expect(redactor.text('key sk-proj-Ab_12-xyZ here')).toBe('key [REDACTED] here');
    expect(redactor.text('(pgpt-AbC_12-xyz)')).toBe('([REDACTED])');
    expect(redactor.text('sk-abcdef.tail pgpt-abcdef/tail')).toBe('[REDACTED].tail [REDACTED]/tail');
    expect(redactor.text('sk-abcdefsk-ghijkl')).toBe('[REDACTED]');
    for (const text of ['sk-abcde', 'pgpt-abcde', 'task-abcdefgh', 'xpgpt-abcdefgh', 'desk-0123456789']) {
      expect(redactor.text(text), text).toBe(text);
    }
  });
});

describe('credential property names', () => {
  const redactor = new Redactor([]);
  const NAMES = ['authorization', 'Authorization', 'AUTHORIZATION', 'proxy-authorization', 'Proxy-Authorization', 'cookie', 'COOKIE', 'Cookie',
    'set-cookie', 'Set-Cookie', 'apiKey', 'apikey', 'APIKEY', 'openaiApiKey', 'OPENAIAPIKEY', 'adminKey', 'ADMINKEY',
    'api_key', 'api-key', 'x-api-key', 'X-Api-Key', 'openai_api_key', 'OPENAI_API_KEY', 'admin_key', 'proxy_authorization', 'set_cookie'];

  it.each(NAMES)('%s is censored whatever it holds, at the top and deep down', (name) => {
    expect(redactor.value({ [name]: 'looks-harmless', other: 'kept' })).toEqual({ [name]: '[REDACTED]', other: 'kept' });
    expect(redactor.value({ [name]: 12345 })).toEqual({ [name]: '[REDACTED]' });
    expect(redactor.value({ [name]: { nested: 'x' } })).toEqual({ [name]: '[REDACTED]' });
    expect(redactor.value({ [name]: ['a', 'b'] })).toEqual({ [name]: '[REDACTED]' });
    expect(redactor.value({ [name]: false })).toEqual({ [name]: '[REDACTED]' });
    expect(redactor.value({ [name]: '' })).toEqual({ [name]: '[REDACTED]' });
    const deep = redactor.value(nest(6, { [name]: 'looks-harmless' }));
    expect(dig(deep, 6)).toEqual({ [name]: '[REDACTED]' });
    expect(redactor.value([[{ headers: { [name]: 'v' } }]])).toEqual([[{ headers: { [name]: '[REDACTED]' } }]]);
  });

  it('null and undefined under a credential name stay as they are', () => {
    const out = redactor.value({ authorization: null, cookie: undefined, apiKey: null, nested: { Authorization: undefined } }) as Record<string, unknown>;
    expect(out).toStrictEqual({ authorization: null, cookie: undefined, apiKey: null, nested: { Authorization: undefined } });
    expect('cookie' in out).toBe(true);
  });

  it('other names keep their value (redacted only by value and pattern)', () => {
    const input = { accept: 'text/plain', author: 'ann', authorizationNote: 'plain', cookies_enabled: true, key: 'k', apiKeyName: 'n' };
    expect(redactor.value(input)).toEqual(input);
  });
});

describe('depth', () => {
  const redactor = new Redactor(['plain-deep-secret']);

  it('copies eight levels below the top, cuts the ninth to [Truncated]', () => {
    const out = redactor.value(nest(9, { leaf: 'plain-deep-secret', n: 1 }));
    // Levels 0..8 are copied objects; the one at level 9 is cut.
    expect(dig(out, 8)).toEqual({ next: '[Truncated]' });
    const kept = redactor.value(nest(8, { leaf: 'plain-deep-secret', n: 1 }));
    expect(dig(kept, 8)).toEqual({ leaf: '[REDACTED]', n: 1 });
  });

  it('arrays and errors count as levels and are cut the same way; strings and numbers are never cut', () => {
    let arrays: unknown = ['plain-deep-secret'];
    for (let i = 0; i < 9; i++) arrays = [arrays];
    expect(JSON.stringify(redactor.value(arrays))).toBe(`${'['.repeat(9)}"[Truncated]"${']'.repeat(9)}`);
    expect(dig(redactor.value(nest(9, new Error('plain-deep-secret'))), 8)).toEqual({ next: '[Truncated]' });
    // A string or number right at the cut is a value, not a level.
    expect(dig(redactor.value(nest(9, 'x plain-deep-secret')), 9)).toBe('x [REDACTED]');
    expect(dig(redactor.value(nest(9, 7)), 9)).toBe(7);
  });

  it("an error's code and cause are one level below it", () => {
    const err = Object.assign(new Error('e', { cause: { reason: 'plain-deep-secret' } }), { code: { detail: 'plain-deep-secret' } });
    const atEdge = dig(redactor.value(nest(8, err)), 8) as { code: unknown; cause: unknown };
    expect(atEdge.code).toBe('[Truncated]');
    expect(atEdge.cause).toBe('[Truncated]');
    const above = dig(redactor.value(nest(7, err)), 7) as { code: unknown; cause: unknown };
    expect(above.code).toEqual({ detail: '[REDACTED]' });
    expect(above.cause).toEqual({ reason: '[REDACTED]' });
  });

  it('a deep secret never leaks, cut or not, in any nesting', () => {
    for (let levels = 0; levels < 14; levels++) {
      const out = JSON.stringify(redactor.value(nest(levels, { s: 'plain-deep-secret', list: ['plain-deep-secret'] })));
      expect(out, String(levels)).not.toContain('plain-deep-secret');
    }
  });
});

describe('values and errors', () => {
  const redactor = new Redactor(['plain-value-secret']);

  it('leaves numbers, booleans, null and undefined as they are', () => {
    for (const v of [0, 42, -1.5, true, false, null, undefined]) expect(redactor.value(v)).toBe(v);
  });

  it('an error without code or cause gets no such field; one without a stack, an undefined stack', () => {
    const out = redactor.value(new RangeError('bad plain-value-secret')) as Record<string, unknown>;
    expect(out.type).toBe('RangeError');
    expect(out.message).toBe('bad [REDACTED]');
    expect('code' in out).toBe(false);
    expect('cause' in out).toBe(false);
    expect(out.constructor).toBe(RangeError);
    expect(Object.keys(out)).not.toContain('constructor');
    const bare = new Error('no stack');
    bare.stack = undefined;
    expect((redactor.value(bare) as Record<string, unknown>).stack).toBeUndefined();
    // A numeric code stays a number.
    expect((redactor.value(Object.assign(new Error('x'), { code: 7 })) as Record<string, unknown>).code).toBe(7);
  });
});

describe('needed()', () => {
  const redactor = new Redactor(['plain-needed-secret', '', null, undefined]);

  it('is true for a configured secret and for every token shape', () => {
    for (const text of ['x plain-needed-secret y', 'Bearer abc', 'bearer abc', 'sk-abcdef', 'pgpt-abcdef']) expect(redactor.needed(text), text).toBe(true);
  });

  it('is false for ordinary text (an empty secret is ignored), and for short key-like words', () => {
    for (const text of ['', 'ordinary text', 'plain-needed', 'sk-abc', 'pgpt-abc', 'task-abcdefgh', 'Bearer']) expect(redactor.needed(text), text).toBe(false);
    expect(new Redactor([]).needed('ordinary text')).toBe(false);
  });

  it('agrees with text(): whatever needs nothing comes back unchanged', () => {
    for (const text of ['ordinary text', 'plain-needed', 'sk-abc']) expect(redactor.text(text)).toBe(text);
    expect(redactor.text('plain-needed-secret')).toBe('[REDACTED]');
  });
});

describe('secrets that are not set', () => {
  // PROXYGPT_ADMIN_KEY unset, an empty PROXYGPT_API_KEYS entry: nothing to look for, and an empty
  // "secret" must not match between every two characters.
  const redactor = new Redactor(['', null, undefined, 'set-secret-value', '', 'set-secret-value']);

  it('are ignored: text without the set secret comes back unchanged', () => {
    for (const text of ['', 'ordinary text', 'a b c']) {
      expect(redactor.text(text)).toBe(text);
      expect(redactor.needed(text), text).toBe(false);
      expect(redactor.hasSecret(text), text).toBe(false);
    }
    expect(redactor.text('x set-secret-value y set-secret-value')).toBe('x [REDACTED] y [REDACTED]');
    expect(redactor.hasSecret('x set-secret-value')).toBe(true);
  });

  it('a redactor with no secret at all still removes the token patterns', () => {
    const none = new Redactor([null, undefined, '']);
    expect(none.text('abc')).toBe('abc');
    expect(none.hasSecret('abc')).toBe(false);
    expect(none.text('key sk-abcdefgh1234')).toBe('key [REDACTED]');
  });
});
