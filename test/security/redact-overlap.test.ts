/**
 * Secrets that share a stretch (the end of one is the start of the other, or one lies inside
 * another's held-back end) are removed whole, never one whole and a remnant of the other: in text
 * (text, secretsOnly), in bytes (maskSecrets) and in a stream cut at every position, and at the
 * end of a stream that stops while such bytes are held back.
 */
import { describe, expect, it } from 'vitest';
import { Redactor } from '../../src/redact.js';

const A = 'k1-AAAA-shared';
const B = 'shared-BBBB-k2';
const joined = 'k1-AAAA-shared-BBBB-k2'; // A and B overlapping on "shared"

/** Every way to cut `text` in two chunks, scrubbed; the joined output. */
function streamed(redactor: Redactor, text: string): string[] {
  const bytes = Buffer.from(text);
  const outs: string[] = [];
  for (let cut = 0; cut <= bytes.length; cut++) {
    const s = redactor.scrubber();
    outs.push(Buffer.concat([s.write(bytes.subarray(0, cut)), s.write(bytes.subarray(cut)), s.end()]).toString());
  }
  return outs;
}

describe('overlapping secrets', () => {
  const redactor = new Redactor([A, B]);

  it('text() and secretsOnly() remove both whole: one [REDACTED] for the shared span', () => {
    expect(redactor.text(`x ${joined} y`)).toBe('x [REDACTED] y');
    expect(redactor.secretsOnly(`x ${joined} y ${A} z ${B}`)).toBe('x [REDACTED] y [REDACTED] z [REDACTED]');
  });

  it('maskSecrets masks the union, byte for byte', () => {
    expect(redactor.maskSecrets(Buffer.from(`"${joined}"`)).toString()).toBe(`"${'*'.repeat(joined.length)}"`);
  });

  it('a stream cut at any position leaks no part of either', () => {
    for (const [cut, out] of streamed(redactor, `data: ${joined} end`).entries()) {
      expect(out, `cut at ${cut}`).toBe(`data: ${'*'.repeat(joined.length)} end`);
    }
  });

  it('a secret inside the end held back for a longer one is masked when the stream stops there', () => {
    const inner = new Redactor(['abcdefgh', 'cde']);
    const s = inner.scrubber();
    const first = s.write(Buffer.from('x abcde')); // "abcde" may begin the longer one: held back
    expect(first.toString()).toBe('x ');
    expect(s.end().toString()).toBe('ab***');
  });

  it('a repeated secret overlapping itself is removed whole', () => {
    const self = new Redactor(['abab']);
    expect(self.text('xababab')).toBe('x[REDACTED]');
    expect(self.maskSecrets(Buffer.from('xababab')).toString()).toBe('x******');
    for (const out of streamed(self, 'xababab')) expect(out).toBe('x******');
  });
});
