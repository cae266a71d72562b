/**
 * SseTap against a malformed upstream stream: an event may hold 1 MiB of text (1,048,576
 * characters, its blank line included) and passes intact up to there, in any chunking; one
 * character more (with or without its blank line yet) ends the client's stream with an
 * OpenAI-shaped error event, after the events complete before it, and nothing more is read from
 * the upstream (the write that crossed the cap is never acknowledged) until the caller aborts it
 * (`onTooLarge`, called once, when the client has read everything). And the boundary scan is
 * linear: 10,000 small chunks without a blank line are each scanned once, not the whole pending
 * text again per chunk.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SseTap } from '../../src/metering/sse-tap.js';

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;

interface Run {
  tap: SseTap;
  /** Everything the tap pushed so far. */
  out: () => string;
  /** Writes acknowledged by the tap (a write it did not take stays unacknowledged). */
  acked: () => number;
  tooLarge: () => number;
  ended: Promise<void>;
}

function start(): Run {
  let tooLarge = 0;
  let acked = 0;
  const tap = new SseTap({ stripUsageChunk: false, onTooLarge: () => tooLarge++ });
  const parts: string[] = [];
  tap.on('data', (c: Buffer) => parts.push(c.toString('utf8')));
  const ended = new Promise<void>((resolve, reject) => {
    tap.on('end', resolve);
    tap.on('error', reject);
  });
  const run: Run = { tap, out: () => parts.join(''), acked: () => acked, tooLarge: () => tooLarge, ended };
  Object.assign(run, {
    write: (chunk: string) =>
      tap.write(Buffer.from(chunk, 'utf8'), () => {
        acked++;
      }),
  });
  return run;
}

const write = (run: Run, chunk: string) => (run as Run & { write: (c: string) => boolean }).write(chunk);

/** `text` in pieces of `size` characters. */
function pieces(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

/** A `data:` event of exactly `chars` characters, its blank line (`eol` twice) included. */
function eventOf(chars: number, eol = '\n'): string {
  const head = 'data: {"x":"';
  const tail = `"}${eol}${eol}`;
  return head + 'x'.repeat(chars - head.length - tail.length) + tail;
}

const first = 'data: {"choices":[{"index":0,"delta":{"content":"hi "}}]}\n\n';
const DONE = 'data: [DONE]\n\n';

async function feedAndEnd(chunks: string[]): Promise<Run> {
  const run = start();
  for (const c of chunks) write(run, c);
  run.tap.end();
  await run.ended;
  return run;
}

function expectTooLarge(out: string, before: string): void {
  expect(out.startsWith(before)).toBe(true);
  const last = out.slice(before.length);
  expect(last.endsWith('\n\n')).toBe(true);
  expect(last.startsWith('data: ')).toBe(true);
  expect(JSON.parse(last.slice('data: '.length))).toEqual({
    error: { message: expect.stringContaining('1 MiB'), type: 'api_error', code: 'upstream_event_too_large', param: null },
  });
}

describe('an event up to 1 MiB passes intact', () => {
  it.each([
    ['LF', '\n'],
    ['CRLF', '\r\n'],
  ])('%s: exactly 1 MiB with its blank line, in 64 KiB chunks and in odd ones, between other events', async (_name, eol) => {
    const big = eventOf(MiB, eol);
    expect(big.length).toBe(MiB);
    const stream = first + big + first + DONE;
    for (const size of [CHUNK, 1000, 65_537]) {
      const run = await feedAndEnd(pieces(stream, size));
      expect(run.out()).toBe(stream);
      expect(run.tooLarge()).toBe(0);
    }
  });

  it('1 MiB less its blank line, then the blank line in a chunk of its own', async () => {
    const big = eventOf(MiB);
    const run = await feedAndEnd([...pieces(big.slice(0, -2), CHUNK), '\n', '\n', DONE]);
    expect(run.out()).toBe(big + DONE);
  });
});

describe('an event past 1 MiB ends the stream with an error event', () => {
  it('one character more, complete: the events before it, then the error, and the stream ends', async () => {
    const run = start();
    const chunks = pieces(first + eventOf(MiB + 1) + first + DONE, CHUNK);
    for (const c of chunks) write(run, c);
    await run.ended;
    expectTooLarge(run.out(), first);
    expect(run.tooLarge()).toBe(1);
    // The chunk holding the end of the event (the 17th) was not taken, nor anything after it.
    expect(run.acked()).toBe(Math.ceil((first.length + MiB + 1) / CHUNK) - 1);
  });

  it('never ending: the error comes with the chunk that takes it past 1 MiB, not later, and nothing after is taken', async () => {
    const run = start();
    write(run, first);
    write(run, 'data: {"x":"');
    // Exactly 1 MiB of text in the pending event: 'data: {"x":"' (12) + 16 × 65,534 + 20.
    for (let i = 0; i < 16; i++) write(run, 'x'.repeat(CHUNK - 2));
    write(run, 'x'.repeat(20));
    await new Promise((resolve) => setImmediate(resolve));
    expect(run.tooLarge()).toBe(0);
    expect(run.acked()).toBe(19); // all taken: the pending event is exactly 1 MiB
    expect(run.out()).toBe(first);
    write(run, 'x'); // one character more
    for (let i = 0; i < 5; i++) write(run, 'x'.repeat(CHUNK));
    await run.ended;
    expectTooLarge(run.out(), first);
    expect(run.acked()).toBe(19);
    expect(run.tooLarge()).toBe(1);
  });

  it('a pending event of exactly 1 MiB: the blank line that ends it makes it too large', async () => {
    const run = start();
    const body = eventOf(MiB + 2).slice(0, -2); // 1 MiB without its blank line
    for (const c of pieces(body, CHUNK)) write(run, c);
    write(run, '\n\n');
    await run.ended;
    expectTooLarge(run.out(), '');
  });

  it('in 10,000+ small chunks: the cap triggers at the first chunk past it', async () => {
    const run = start();
    const size = 100;
    for (let i = 0; i < 11_000; i++) write(run, 'y'.repeat(size));
    await run.ended;
    expectTooLarge(run.out(), '');
    expect(run.acked()).toBe(Math.floor(MiB / size));
  });

  it('the client that never reads the error: onTooLarge waits for it', async () => {
    let called = false;
    const tap = new SseTap({ stripUsageChunk: false, onTooLarge: () => (called = true) });
    for (const c of pieces(eventOf(MiB + 1), CHUNK)) tap.write(Buffer.from(c));
    await new Promise((resolve) => setImmediate(resolve));
    expect(called).toBe(false); // nobody has read the error event yet
    tap.resume();
    await new Promise((resolve) => tap.on('end', resolve));
    expect(called).toBe(true);
  });
});

describe('the boundary scan is linear', () => {
  const original = RegExp.prototype.exec;
  afterEach(() => {
    RegExp.prototype.exec = original;
  });

  it('10,000 chunks without a blank line are each scanned once, then the event passes whole', async () => {
    // Counts the characters the tap's event-boundary pattern (/\r?\n\r?\n/) is asked to scan.
    let scanned = 0;
    RegExp.prototype.exec = function (this: RegExp, subject: string) {
      if (this.source === '\\r?\\n\\r?\\n') scanned += subject.length - (this.global || this.sticky ? this.lastIndex : 0);
      return original.call(this, subject);
    };
    const chunks = Array.from({ length: 10_000 }, (_, i) => `${String(i).padStart(5, '0')}${'z'.repeat(95)}`);
    const text = `data: ${chunks.join('')}`;
    const run = await feedAndEnd([...chunks.map((c, i) => (i === 0 ? `data: ${c}` : c)), '\n\n', DONE]);
    RegExp.prototype.exec = original;
    expect(run.out()).toBe(`${text}\n\n${DONE}`);
    expect(scanned).toBeGreaterThan(text.length); // the count works: every character was scanned
    // Each chunk once (plus the few characters before it a blank line may start with); a parser
    // that rescans its pending text scans about 10,000 × 500,000 characters.
    expect(scanned).toBeLessThan(1.1 * text.length);
  });
});
