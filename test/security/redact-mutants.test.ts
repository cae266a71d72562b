/**
 * The Redactor's search for configured secrets (src/redact.ts), on secrets of every shape: letters
 * with the rarest character after the first, digits or punctuation only, upper case only, non-ASCII
 * (Cyrillic, Latin-1 letters, emoji), one and two characters, secrets differing only in case, a
 * secret that holds the mask byte `*`; each at the very start, the middle, the very end, twice side
 * by side, and as near misses; in text (`hasSecret`, `secretsOnly`, `text`), in bytes
 * (`maskSecrets`) and in a stream split at every byte; both ways the Redactor searches (up to four
 * secrets, one search each from an anchor; above, one scan for all).
 *
 * Every Redactor here is built inside its test, not when the file loads: a mutation run switches
 * its mutant on only once the tests start (test/MUTATION.md), so a Redactor built at load time is
 * built by the unmutated constructor. The survivors of issue 11's run that these tests kill are
 * listed in test/MUTATION.md.
 */
import { describe, expect, it } from 'vitest';
import { Redactor } from '../../src/redact.js';

/** What `maskSecrets` and the scrubber write for `s`: one `*` per UTF-8 byte. */
const stars = (s: string) => '*'.repeat(Buffer.byteLength(s));
/** Secrets that never appear in the texts below: with them the list holds six (one scan for all). */
const FILLERS = ['filler-value-one-111', 'filler-value-two-222', 'filler-value-six-333', 'filler-value-ten-444', 'filler-value-end-555'];
const WAYS = [
  ['one search each', (secrets: string[]) => new Redactor(secrets)],
  ['one scan for all', (secrets: string[]) => new Redactor([...secrets, ...FILLERS])],
] as const;

/** Runs `chunks` through one new scrubber and returns all it let out, and each write's answer. */
function scrub(redactor: Redactor, chunks: Buffer[]): { out: string; writes: Buffer[] } {
  const scrubber = redactor.scrubber();
  const writes = chunks.map((c) => scrubber.write(c));
  return { out: Buffer.concat([...writes, scrubber.end()]).toString('utf8'), writes };
}

/** `s` with the code point in its middle replaced: a near miss. */
function nearMiss(s: string): string {
  const points = [...s];
  const mid = Math.floor(points.length / 2);
  points[mid] = points[mid] === '#' ? '$' : '#';
  return points.join('');
}

const SHAPES: [string, string][] = [
  ['letters, the rarest one after the first', 'plain-secret-value'],
  ['digits only', '20481632641282565'],
  ['digits around one symbol', '1234567-89012345'],
  ['punctuation only', '!#%&=?^~@|'],
  ['upper case only', 'UPPER-CASE-ONLY-KEY'],
  ['Cyrillic (two bytes a letter)', 'ключ-секрет-значение'],
  ['Latin-1 letters (other bytes in UTF-8 than in Latin-1)', 'clé-privée-du-service'],
  ['emoji (four bytes, two UTF-16 units)', 'key-🔑-secret-🔒'],
  ['nine characters, the rarest second', 'eXeeeeeee'],
  ['the rarest character in its last eight', 'eeeeeeeeeeeX'],
  ['one character', 'Q'],
  ['two characters', 'z9'],
];

describe.each(WAYS)('%s', (_way, build) => {
  describe.each(SHAPES)('a secret of %s', (_shape, secret) => {
    const placed: [string, string, string][] = [
      ['alone', secret, '[REDACTED]'],
      ['at the very start', `${secret} then text`, '[REDACTED] then text'],
      ['in the middle', `before ${secret} after`, 'before [REDACTED] after'],
      ['at the very end', `text then ${secret}`, 'text then [REDACTED]'],
      ['twice side by side', `x ${secret}${secret} y`, 'x [REDACTED][REDACTED] y'],
      ['in JSON, three times', `{"a":"${secret}","b":["${secret}"],"c":"ü${secret}"}`, '{"a":"[REDACTED]","b":["[REDACTED]"],"c":"ü[REDACTED]"}'],
    ];

    it.each(placed)('is found and removed %s, in text', (_where, text, removed) => {
      const redactor = build([secret]);
      expect(redactor.hasSecret(text)).toBe(true);
      expect(redactor.secretsOnly(text)).toBe(removed);
      expect(redactor.text(text)).toBe(removed);
    });

    it.each(placed)('is masked byte for byte %s, in bytes', (_where, text, removed) => {
      const redactor = build([secret]);
      const input = Buffer.from(text);
      const out = redactor.maskSecrets(input);
      expect(out.toString()).toBe(removed.replaceAll('[REDACTED]', stars(secret)));
      expect(out.length).toBe(input.length);
      expect(input.toString()).toBe(text); // the input itself is left alone
    });

    it('is masked in a stream split anywhere, in two or one byte at a time', () => {
      const redactor = build([secret]);
      const body = Buffer.from(`{"a":"${secret}","b":"é${secret}${secret}"}`);
      const masked = `{"a":"${stars(secret)}","b":"é${stars(secret)}${stars(secret)}"}`;
      for (let i = 0; i <= body.length; i++) {
        expect(scrub(redactor, [body.subarray(0, i), body.subarray(i)]).out, `split at ${i}`).toBe(masked);
      }
      expect(scrub(redactor, [...body].map((b) => Buffer.from([b]))).out).toBe(masked);
    });

    it('near misses and texts without it are left alone, the same buffer for bytes', () => {
      const redactor = build([secret]);
      const misses = [nearMiss(secret), '', '{} "" ,.: \n', 'ordinary text with none of it'];
      if (secret.length > 1) misses.push(`x ${[...secret].slice(1).join('')} y`, `x ${[...secret].slice(0, -1).join('')} y`);
      for (const text of misses) {
        expect(redactor.hasSecret(text), text).toBe(false);
        expect(redactor.secretsOnly(text)).toBe(text);
        const bytes = Buffer.from(text);
        expect(redactor.maskSecrets(bytes)).toBe(bytes);
      }
    });
  });

  it('two secrets differing only in case are each removed; a casing not configured is no secret', () => {
    const redactor = build(['MixedCase-Secret-77', 'mixedcase-secret-77']);
    const text = 'a MixedCase-Secret-77 b mixedcase-secret-77 c MIXEDCASE-SECRET-77';
    expect(redactor.secretsOnly(text)).toBe('a [REDACTED] b [REDACTED] c MIXEDCASE-SECRET-77');
    expect(redactor.maskSecrets(Buffer.from(text)).toString()).toBe(`a ${'*'.repeat(19)} b ${'*'.repeat(19)} c MIXEDCASE-SECRET-77`);
    expect(redactor.hasSecret('MIXEDCASE-SECRET-77 Mixedcase-Secret-77')).toBe(false);
  });

  it('overlapping secrets in one body are both masked whole, in bytes', () => {
    const redactor = build(['k1-AAAA-shared', 'shared-BBBB-k2']);
    expect(redactor.maskSecrets(Buffer.from('x k1-AAAA-shared-BBBB-k2 y')).toString()).toBe(`x ${'*'.repeat(22)} y`);
  });

  it('a secret holding the mask byte is not found in what masking another one wrote, whatever the split', () => {
    // The stream never holds "id-*****"; masking "12345" writes it. Held back and scanned again
    // with the next chunk, it would be masked a second time, "id-" with it.
    const redactor = build(['id-*****', '12345']);
    const body = Buffer.from('id-12345 and id-12345x');
    const masked = 'id-***** and id-*****x';
    expect(redactor.maskSecrets(body).toString()).toBe(masked);
    for (let i = 0; i <= body.length; i++) {
      expect(scrub(redactor, [body.subarray(0, i), body.subarray(i)]).out, `split at ${i}`).toBe(masked);
    }
    expect(scrub(redactor, [...body].map((b) => Buffer.from([b]))).out).toBe(masked);
    // What cannot begin a secret goes on at once.
    expect(scrub(redactor, [body.subarray(0, 8), body.subarray(8)]).writes[0]!.toString()).toBe('id-*****');
  });
});

describe('the switch between the two ways', () => {
  it.each([4, 5, 6])('with %i secrets, each one is found in text and in bytes, and only those', (count) => {
    const secrets = ['alpha-secret-0001', 'bravo-secret-0002', 'charlie-secret-03', 'delta-secret-0004', 'echo-secret-00005', 'foxtrot-secret-06'].slice(0, count);
    const redactor = new Redactor(secrets);
    for (const secret of secrets) {
      const text = `before ${secret} after`;
      expect(redactor.hasSecret(text), secret).toBe(true);
      expect(redactor.secretsOnly(text)).toBe('before [REDACTED] after');
      expect(redactor.maskSecrets(Buffer.from(text)).toString()).toBe(`before ${stars(secret)} after`);
    }
    const none = 'before alpha-secret-000 bravo-secret-0003 after';
    expect(redactor.hasSecret(none)).toBe(false);
    const bytes = Buffer.from(none);
    expect(redactor.maskSecrets(bytes)).toBe(bytes);
  });
});

describe('without any secret', () => {
  it('text() still removes the token shapes, Bearer in any case; bytes and streams pass as they are', () => {
    const redactor = new Redactor([]);
    expect(redactor.needed('authorization: bearer abc.def')).toBe(true);
    expect(redactor.text('authorization: bearer abc.def')).toBe('authorization: Bearer [REDACTED]');
    expect(redactor.text('BEARER abc and sk-abcdefgh')).toBe('Bearer [REDACTED] and [REDACTED]');
    expect(redactor.hasSecret('bearer abc')).toBe(false);
    expect(redactor.secretsOnly('bearer abc sk-abcdefgh')).toBe('bearer abc sk-abcdefgh');
    const bytes = Buffer.from('bearer abc');
    expect(redactor.maskSecrets(bytes)).toBe(bytes);
    const scrubber = redactor.scrubber();
    expect(scrubber.write(bytes)).toBe(bytes);
    expect(scrubber.end().length).toBe(0);
  });
});

describe('the stream scrubber copies nothing it need not', () => {
  it('every chunk with nothing to mask or hold back goes on as it came, not only the first', () => {
    const redactor = new Redactor(['upstream-key-0001']);
    const scrubber = redactor.scrubber();
    for (const text of ['data: {"a":1}\n\n', 'data: {"b":2}\n\n']) {
      const chunk = Buffer.from(text);
      expect(scrubber.write(chunk)).toBe(chunk);
    }
    // "upstream-" may begin the key: held back, then let out joined to the next chunk.
    expect(scrubber.write(Buffer.from('x upstream-')).toString()).toBe('x ');
    expect(scrubber.write(Buffer.from('plain\n')).toString()).toBe('upstream-plain\n');
    const after = Buffer.from('data: [DONE]\n\n');
    expect(scrubber.write(after)).toBe(after);
    expect(scrubber.end().length).toBe(0);
  });
});
