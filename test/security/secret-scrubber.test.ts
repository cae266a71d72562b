/**
 * The Redactor's tools for what an upstream answers (2xx headers and bodies): only the configured
 * secrets go (`secretsOnly`, `hasSecret`; the token patterns `sk-…`, `Bearer …` stay, a model may
 * write them), `maskSecrets` overwrites them byte for byte (length kept, the input untouched), and
 * the stream scrubber masks a secret cut across chunks at every offset, one byte at a time, next to
 * another secret, at the very start and end of a stream, and holds back only the bytes that may
 * begin a secret (nothing without secrets; a chunk with nothing to mask goes on uncopied).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Redactor } from '../../src/redact.js';

const KEY = 'upstream-plain-key-1234567890';
const PROXY = 'proxy-secret-77';
const few = new Redactor([PROXY, KEY, null, '']);
/** Above four secrets the Redactor looks for all of them in one scan: both ways are tested. */
const many = new Redactor([PROXY, KEY, 'other-secret-1-abcdef', 'other-secret-2-abcdef', 'other.secret*3(x)', 'zz-secret-4']);
let redactor = few;
const stars = (s: string) => '*'.repeat(Buffer.byteLength(s));

/** Runs `chunks` through one scrubber and returns everything it let out. */
function scrub(r: Redactor, chunks: Buffer[]): { out: string; writes: Buffer[] } {
  const s = r.scrubber();
  const writes = chunks.map((c) => s.write(c));
  return { out: Buffer.concat([...writes, s.end()]).toString('utf8'), writes };
}

describe.each([
  ['two secrets (one search each)', few],
  ['six secrets (one scan for all)', many],
])('with %s', (_name, chosen) => {
  beforeAll(() => {
    redactor = chosen;
  });

  describe('secretsOnly and hasSecret', () => {
    it('remove the configured secrets, not what only looks like a key', () => {
      const text = `a ${KEY} b Bearer ${PROXY} c sk-abcdefghijkl Bearer xyz pgpt-abcdefgh`;
      expect(redactor.hasSecret(text)).toBe(true);
      expect(redactor.secretsOnly(text)).toBe('a [REDACTED] b Bearer [REDACTED] c sk-abcdefghijkl Bearer xyz pgpt-abcdefgh');
      const lookalike = 'sk-abcdefghijkl and Bearer xyz';
      expect(redactor.hasSecret(lookalike)).toBe(false);
      expect(redactor.secretsOnly(lookalike)).toBe(lookalike);
      expect(redactor.text(lookalike)).not.toBe(lookalike); // the log redaction does take those
    });
  });

  describe('in long texts and bodies (searched another way than short ones)', () => {
    const pad = 'lorem ipsum dolor sit amet 0123456789 '.repeat(200); // 7,600 characters
    it.each([
      ['at the start', `${KEY}${pad}`],
      ['in the middle', `${pad}${KEY}${pad}`],
      ['at the end', `${pad}${KEY}`],
      ['after a near miss', `${pad}${KEY.slice(0, 5)}X${KEY.slice(6)} ${KEY}`],
    ])('a secret %s is found, as text and as bytes', (_where, text) => {
      expect(redactor.hasSecret(text)).toBe(true);
      expect(redactor.secretsOnly(text).includes(KEY)).toBe(false);
      expect(redactor.maskSecrets(Buffer.from(text)).toString().includes(KEY)).toBe(false);
    });

    it.each([
      ['every character but one', `${pad}${KEY.slice(0, 10)}X${KEY.slice(11)}${pad}`],
      ['its first character missing', `${pad}${KEY.slice(1)}${pad}`],
      ['its last character missing', `${pad}${KEY.slice(0, -1)}`],
      ['its tail at the very start', `${KEY.slice(3)}${pad}`],
    ])('%s is not a secret', (_what, text) => {
      expect(redactor.hasSecret(text)).toBe(false);
      expect(redactor.secretsOnly(text)).toBe(text);
      const bytes = Buffer.from(text);
      expect(redactor.maskSecrets(bytes)).toBe(bytes);
    });
  });

  describe('maskSecrets', () => {
    it('overwrites each secret with as many stars, keeps the length, leaves the input alone', () => {
      const input = Buffer.from(`{"a":"${KEY}","b":"${PROXY}${PROXY}","c":"ünï ${KEY}"}`);
      const copy = Buffer.from(input);
      const out = redactor.maskSecrets(input);
      expect(out.toString()).toBe(`{"a":"${stars(KEY)}","b":"${stars(PROXY)}${stars(PROXY)}","c":"ünï ${stars(KEY)}"}`);
      expect(out.length).toBe(input.length);
      expect(input.equals(copy)).toBe(true);
    });

    it('hands back the same buffer when there is nothing to mask', () => {
      const input = Buffer.from('{"choices":[]} sk-notours-0000000');
      expect(redactor.maskSecrets(input)).toBe(input);
    });
  });

  describe('the stream scrubber', () => {
    const body = `{"x":"${KEY}|${PROXY}${KEY}","y":"fin ${PROXY}"}`;
    const masked = `{"x":"${stars(KEY)}|${stars(PROXY)}${stars(KEY)}","y":"fin ${stars(PROXY)}"}`;
    const bytes = Buffer.from(body);

    it('masks every secret whatever the two-way split', () => {
      for (let i = 0; i <= bytes.length; i++) {
        expect(scrub(redactor, [bytes.subarray(0, i), bytes.subarray(i)]).out, `split at ${i}`).toBe(masked);
      }
    });

    it('one byte at a time, and three-way splits', () => {
      expect(scrub(redactor, [...bytes].map((b) => Buffer.from([b]))).out).toBe(masked);
      for (let i = 1; i < bytes.length; i += 3) {
        for (let j = i; j < bytes.length; j += 5) {
          expect(scrub(redactor, [bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)]).out).toBe(masked);
        }
      }
    });

    it('a secret that is the whole stream, or its first or last bytes', () => {
      for (const text of [KEY, `${KEY}tail`, `head${KEY}`]) {
        const b = Buffer.from(text);
        for (let i = 0; i <= b.length; i++) {
          expect(scrub(redactor, [b.subarray(0, i), b.subarray(i)]).out).toBe(text.replace(KEY, stars(KEY)));
        }
      }
    });

    it('holds back only the last bytes that may begin a secret, and nothing without secrets', () => {
      expect(scrub(redactor, [Buffer.from('a'.repeat(100))]).writes[0]!.length).toBe(100);
      for (let k = 1; k < KEY.length; k++) {
        const { writes, out } = scrub(redactor, [Buffer.from(`${'a'.repeat(50)}${KEY.slice(0, k)}`)]);
        expect(writes[0]!.toString(), `${k} bytes of the key`).toBe('a'.repeat(50));
        expect(out).toBe(`${'a'.repeat(50)}${KEY.slice(0, k)}`); // at the end, as it was: it never became a secret
      }
      const none = new Redactor([]);
      const chunk = Buffer.from('anything at all');
      const s = none.scrubber();
      expect(s.write(chunk)).toBe(chunk);
      expect(s.end().length).toBe(0);
    });

    it('a chunk with nothing to mask or hold back goes on as it came (no copy)', () => {
      const s = redactor.scrubber();
      const chunk = Buffer.from('{"choices":[{"message":{"content":"plain text, nothing of ours"}}]}');
      expect(s.write(chunk)).toBe(chunk);
    });
  });
});

describe('one scan for many secrets', () => {
  it('matches secrets with regular-expression characters literally, in text and bytes', () => {
    const text = 'a other.secret*3(x) b otherXsecret*3(x) c othe.secret3x d zz-secret-4';
    expect(many.secretsOnly(text)).toBe('a [REDACTED] b otherXsecret*3(x) c othe.secret3x d [REDACTED]');
    expect(many.hasSecret('otherXsecret*3(x) othe.secret3x')).toBe(false);
    expect(many.maskSecrets(Buffer.from(text)).toString()).toBe(`a ${stars('other.secret*3(x)')} b otherXsecret*3(x) c othe.secret3x d ${stars('zz-secret-4')}`);
  });
});
