/**
 * The JSON tap's edges that the mutation run found untested (test/MUTATION.md, "Accounting"): the
 * scrubber's held-back tail at the end of the body, the 8 MiB copy cap exactly at and one byte
 * past the limit, and choices whose message is missing or whose content is not a string.
 */
import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { JsonTap } from '../../src/metering/json-tap.js';
import { Redactor, SecretScrubber } from '../../src/redact.js';

const CAP = 8 * 1024 * 1024;

async function tapped(chunks: Buffer[], tap = new JsonTap()): Promise<{ tap: JsonTap; out: Buffer }> {
  const out: Buffer[] = [];
  tap.on('data', (c: Buffer) => out.push(c));
  await pipeline(Readable.from(chunks), tap);
  return { tap, out: Buffer.concat(out) };
}

/** A chat completion body of exactly `bytes` bytes (padded inside the content) with usage. */
function bodyOf(bytes: number): string {
  const shell = (pad: string) =>
    JSON.stringify({ choices: [{ message: { content: pad } }], usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } });
  const body = shell('x'.repeat(bytes - shell('').length));
  expect(Buffer.byteLength(body)).toBe(bytes);
  return body;
}

const USAGE = { promptTokens: 3, completionTokens: 4, cachedTokens: 0 };

describe('JsonTap mutants', () => {
  it('passes on the bytes the scrubber held back at the end of the body', async () => {
    const secret = 'sk-upstream-secret-0123456789';
    const tap = new JsonTap(new SecretScrubber(new Redactor([secret])));
    // The body ends with the first bytes of the secret: the scrubber keeps them until end().
    const text = `{"choices":[]}  ${secret.slice(0, 6)}`;
    const { out } = await tapped([Buffer.from(text)], tap);
    expect(out.toString()).toBe(text);
  });

  it('reads the usage of a body of exactly 8 MiB', async () => {
    const { tap } = await tapped([Buffer.from(bodyOf(CAP))]);
    expect(tap.usage()).toEqual(USAGE);
  });

  it('reads no usage of a body one byte over 8 MiB, in one chunk', async () => {
    const { tap } = await tapped([Buffer.from(bodyOf(CAP + 1))]);
    expect(tap.usage()).toBeNull();
  });

  it('reads no usage when the bytes past 8 MiB are only whitespace', async () => {
    // The first 8 MiB parse on their own: the body is still over the cap.
    const { tap } = await tapped([Buffer.from(bodyOf(CAP)), Buffer.from(' ')]);
    expect(tap.usage()).toBeNull();
  });

  it('keeps no more than the cap (plus the chunk that crossed it): no text of a body far past it', async () => {
    const body = bodyOf(CAP + 1024);
    const bytes = Buffer.from(body);
    const { tap, out } = await tapped([bytes.subarray(0, CAP - 10), bytes.subarray(CAP - 10, CAP + 10), bytes.subarray(CAP + 10)]);
    expect(out.equals(bytes)).toBe(true);
    expect(tap.completionText()).toBe('');
  });

  it('skips choices without a message or with content that is not a string', async () => {
    const body = JSON.stringify({
      choices: [
        { message: { content: 'one ' } },
        { finish_reason: 'stop' },
        { message: { content: 42 } },
        { message: { content: [{ type: 'text', text: 'part' }] } },
        { message: { content: 'two' } },
      ],
    });
    const { tap } = await tapped([Buffer.from(body)]);
    expect(tap.completionText()).toBe('one two');
  });
});
