/**
 * The byte scans behind the body splice and the nesting limit (src/call/json-bytes.ts), on many
 * generated JSON texts (seeded, so a failure repeats): odd whitespace, escaped keys and quotes,
 * brackets inside strings, numbers no double holds, duplicate keys. Checked against JSON.parse and
 * against the generator's own record of what it wrote, never against the scanner itself.
 */
import { describe, expect, it } from 'vitest';
import { appendTopLevelMembers, scanJsonText, setTopLevelMembers, topLevelObject } from '../../src/call/json-bytes.js';

/** A small seeded PRNG (mulberry32). */
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SPACES = ['', ' ', '\n', '\t', '\r\n  '];
const STRINGS = ['"plain"', '"with \\"quotes\\" and \\\\"', '"brackets ] } [ {"', '"\\u00e9\\/\\ud83d\\ude00"', '""', '"\\\\"', '"日本語"'];
const NUMBERS = ['0', '-1', '12345678901234567891', '0.30000000000000000001', '1e300', '-2.5E-3'];
const KEYS = ['"a"', '"b"', '"stream_options"', '"stream\\u005foptions"', '"max_tokens"', '"k\\"q"'];

/** Random JSON text with random whitespace; `depth` = how many levels its deepest container has. */
function generate(rand: () => number, maxDepth: number): { text: string; depth: number } {
  const pick = <T>(list: T[]) => list[Math.floor(rand() * list.length)]!;
  const ws = () => pick(SPACES);
  const roll = rand();
  if (maxDepth === 0 || roll < 0.4) {
    const scalar = pick([...STRINGS, ...NUMBERS, 'true', 'false', 'null']);
    return { text: scalar, depth: 0 };
  }
  const n = Math.floor(rand() * 4);
  const items = Array.from({ length: n }, () => generate(rand, maxDepth - 1));
  const depth = 1 + Math.max(0, ...items.map((i) => i.depth));
  if (roll < 0.7) return { text: `[${ws()}${items.map((i) => i.text).join(`${ws()},${ws()}`)}${ws()}]`, depth };
  return { text: `{${ws()}${items.map((i) => `${pick(KEYS)}${ws()}:${ws()}${i.text}`).join(`${ws()},${ws()}`)}${ws()}}`, depth };
}

/** A random top-level object: its text and each member's text as written. */
function generateObject(rand: () => number): { text: string; members: { key: string; text: string }[] } {
  const pick = <T>(list: T[]) => list[Math.floor(rand() * list.length)]!;
  const n = Math.floor(rand() * 6);
  const members = Array.from({ length: n }, () => {
    const key = pick(KEYS);
    return { key: JSON.parse(key) as string, text: `${key}${pick(SPACES)}:${pick(SPACES)}${generate(rand, 4).text}` };
  });
  return { text: `${pick(SPACES)}{${pick(SPACES)}${members.map((m) => m.text).join(`${pick(SPACES)},${pick(SPACES)}`)}${pick(SPACES)}}${pick(SPACES)}`, members };
}

const nestsDeeperThan = (bytes: Buffer, max: number) => scanJsonText(bytes, max).tooDeep;

describe('scanJsonText: nesting', () => {
  it('agrees with the generated depth for 2,000 random texts, at every limit around it', () => {
    const rand = prng(8);
    for (let run = 0; run < 2_000; run++) {
      const { text, depth } = generate(rand, 7);
      JSON.parse(text); // the generator writes valid JSON
      const bytes = Buffer.from(text);
      // Whitespace after the value changes nothing.
      const padded = Buffer.from(text + ' '.repeat(20));
      for (const limit of [depth - 1, depth, depth + 1].filter((l) => l >= 0)) {
        expect(nestsDeeperThan(bytes, limit), `${text} at limit ${limit}`).toBe(depth > limit);
        expect(nestsDeeperThan(padded, limit), `${text} (padded) at limit ${limit}`).toBe(depth > limit);
      }
    }
  });

  it('scans 100,000 levels without recursion', () => {
    expect(nestsDeeperThan(Buffer.from('['.repeat(100_000) + ']'.repeat(100_000)), 128)).toBe(true);
  });
});

describe('scanJsonText: repeated top-level keys', () => {
  it('names the first key that repeats, as decoded (escaped spellings included), for 2,000 random objects', () => {
    const rand = prng(21);
    let repeated = 0;
    for (let run = 0; run < 2_000; run++) {
      const { text, members } = generateObject(rand);
      JSON.parse(text);
      const seen = new Set<string>();
      const expected = members.find((m) => seen.has(m.key) || !seen.add(m.key))?.key ?? null;
      if (expected !== null) repeated++;
      expect(scanJsonText(Buffer.from(text), 128).duplicateKey, text).toBe(expected);
    }
    expect(repeated).toBeGreaterThan(200); // the generator does repeat keys
  });

  it('looks only at the top level: keys repeated in nested objects, or in a top-level array, are no duplicates', () => {
    for (const text of ['{"a":{"m":1,"m":2},"b":[{"m":1},{"m":2}]}', '[{"a":1},{"a":2}]', '["a","a"]', '"a"', '{"a":"\\"a\\"","b":"a"}']) {
      expect(scanJsonText(Buffer.from(text), 128).duplicateKey, text).toBeNull();
    }
    expect(scanJsonText(Buffer.from('{"model":"x","messages":[{"model":"y"}],"model":"z"}'), 128).duplicateKey).toBe('model');
  });

  it('still finds a body too deep after a repeated key', () => {
    expect(scanJsonText(Buffer.from(`{"a":1,"a":2,"b":${'['.repeat(200)}${']'.repeat(200)}}`), 128)).toEqual({ tooDeep: true, duplicateKey: 'a' });
  });
});

describe('setTopLevelMembers', () => {
  it('replaces every copy of the set keys and keeps every other member byte for byte (2,000 random objects)', () => {
    const rand = prng(88);
    for (let run = 0; run < 2_000; run++) {
      const { text, members } = generateObject(rand);
      const bytes = Buffer.from(text);
      const top = topLevelObject(bytes);
      expect(top, text).not.toBeNull();
      expect(top!.members.map((m) => m.key)).toEqual(members.map((m) => m.key));
      const set = new Map([
        ['stream_options', '{"include_usage":true}'],
        ['max_completion_tokens', '777'],
      ]);
      const out = setTopLevelMembers(bytes, top!, set).toString('utf8');
      const expected = JSON.parse(text) as Record<string, unknown>;
      delete expected.stream_options;
      expect(JSON.parse(out), `${text} → ${out}`).toEqual({ ...expected, stream_options: { include_usage: true }, max_completion_tokens: 777 });
      for (const m of members) {
        if (m.key === 'stream_options') expect(out).not.toContain(m.text);
        else expect(out).toContain(m.text);
      }
      // One copy of each set key, the gateway's, last.
      const outTop = topLevelObject(Buffer.from(out))!;
      expect(outTop.members.filter((m) => m.key === 'stream_options')).toHaveLength(1);
      expect(outTop.members.slice(-2).map((m) => m.key)).toEqual(['stream_options', 'max_completion_tokens']);
    }
  });

  it('leaves the bytes before and after the object and inside it untouched when nothing is removed', () => {
    const text = ' \n{ "seed" : 12345678901234567891 ,"a":[1, {"b":"}"}] } \n';
    const out = setTopLevelMembers(Buffer.from(text), topLevelObject(Buffer.from(text))!, new Map([['n', '1']])).toString('utf8');
    expect(out).toBe(' \n{ "seed" : 12345678901234567891 ,"a":[1, {"b":"}"}] ,"n":1} \n');
  });

  it('adds to an empty object', () => {
    const out = setTopLevelMembers(Buffer.from('{ }'), topLevelObject(Buffer.from('{ }'))!, new Map([['n', '1']])).toString('utf8');
    expect(JSON.parse(out)).toEqual({ n: 1 });
  });

  it('finds no object in a body that is not one', () => {
    for (const text of ['[]', '"x"', '12', 'null']) expect(topLevelObject(Buffer.from(text))).toBeNull();
  });
});

describe('appendTopLevelMembers', () => {
  it('adds before the closing brace, keeping every byte before it and the whitespace after it', () => {
    const text = ' \n{ "seed" : 12345678901234567891 ,"a":[1, {"b":"}"}] } \r\n\t';
    const out = appendTopLevelMembers(Buffer.from(text), true, ['"n":1', '"m":{"x":true}'])!.toString('utf8');
    expect(out).toBe(' \n{ "seed" : 12345678901234567891 ,"a":[1, {"b":"}"}] ,"n":1,"m":{"x":true}} \r\n\t');
    expect(JSON.parse(out)).toEqual({ seed: 12345678901234567891, a: [1, { b: '}' }], n: 1, m: { x: true } });
  });

  it('adds to an empty object without a comma', () => {
    expect(JSON.parse(appendTopLevelMembers(Buffer.from('{ }\n'), false, ['"n":1'])!.toString('utf8'))).toEqual({ n: 1 });
  });

  it('returns null when the text does not end with a closing brace', () => {
    for (const text of ['[1, {}]', '{"a":1} x', '', '   ', '"}"']) expect(appendTopLevelMembers(Buffer.from(text), true, ['"n":1']), text).toBeNull();
  });
});

