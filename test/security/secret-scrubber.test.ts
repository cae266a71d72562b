/**
 * The Redactor's tools for what an upstream answers (2xx headers and bodies): only the configured
 * secrets go (`secretsOnly`, `hasSecret`; the token patterns `sk-…`, `Bearer …` stay, a model may
 * write them), `maskSecrets` overwrites them byte for byte (length kept, the input untouched), and
 * the stream scrubber masks a secret cut across chunks at every offset, one byte at a time, next to
 * another secret, at the very start and end of a stream, and holds back nothing without secrets.
 */
import { describe, expect, it } from 'vitest';
import { Redactor } from '../../src/redact.js';

const KEY = 'upstream-plain-key-1234567890';
const PROXY = 'proxy-secret-77';
const redactor = new Redactor([PROXY, KEY, null, '']);
const stars = (s: string) => '*'.repeat(Buffer.byteLength(s));

/** Runs `chunks` through one scrubber and returns everything it let out. */
function scrub(r: Redactor, chunks: Buffer[]): { out: string; writes: Buffer[] } {
  const s = r.scrubber();
  const writes = chunks.map((c) => s.write(c));
  return { out: Buffer.concat([...writes, s.end()]).toString('utf8'), writes };
}

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

  it('holds back less than the longest secret, and nothing without secrets', () => {
    const { writes } = scrub(redactor, [Buffer.from('a'.repeat(100))]);
    expect(writes[0]!.length).toBe(100 - (KEY.length - 1));
    const none = new Redactor([]);
    const chunk = Buffer.from('anything at all');
    const s = none.scrubber();
    expect(s.write(chunk)).toBe(chunk);
    expect(s.end().length).toBe(0);
  });
});
