/**
 * Scans of JSON text as bytes, without a tokenizer and without recursion: how deeply a body nests
 * and whether it repeats a top-level key (checked before anything walks the parsed value), and the byte spans of an object's members, so
 * that the gateway can replace a few top-level members of a client's body without re-encoding the
 * rest (JSON.stringify of a parsed body loses number precision: 12345678901234567891 would become
 * 12345678901234567000; it also re-escapes strings and throws on very deep values).
 *
 * The member scan expects valid JSON (the body was parsed before), so it only has to find where
 * strings, containers and scalars end. UTF-8 continuation bytes never equal an ASCII delimiter,
 * so the scans work on the bytes directly.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

const isSpace = (c: number | undefined): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** Index just past the string whose opening quote is at `start` (or the end of `bytes`). */
function stringEnd(bytes: Buffer, start: number): number {
  let i = start + 1;
  for (;;) {
    const quote = bytes.indexOf(QUOTE, i);
    if (quote === -1) return bytes.length;
    // Escaped when an odd number of backslashes stands before it.
    let slashes = 0;
    while (bytes[quote - 1 - slashes] === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return quote + 1;
    i = quote + 1;
  }
}

/** What one pass over a body's JSON text found (see `scanJsonText`). */
export interface JsonTextScan {
  /** The body nests arrays and objects more than the maximum (the outermost is level 1). */
  tooDeep: boolean;
  /** The first top-level member key that came twice (decoded), or null (as far as the scan got when too deep). */
  duplicateKey: string | null;
}

/**
 * One pass over valid JSON text: whether it nests deeper than `maxDepth`, and whether its
 * top-level object names a member twice. Parsers disagree on which copy of a repeated key counts
 * (JSON.parse keeps the last, others the first or refuse), so a body where the gateway and the
 * upstream could read different `model`s or budgets is refused rather than guessed at.
 */
export function scanJsonText(bytes: Buffer, maxDepth: number): JsonTextScan {
  let depth = 0;
  let topIsObject = false;
  let expectKey = false;
  const keys = new Set<string>();
  let duplicateKey: string | null = null;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (c === QUOTE) {
      const end = stringEnd(bytes, i);
      if (expectKey) {
        const raw = bytes.toString('utf8', i, end);
        const key = raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        if (duplicateKey === null && keys.has(key)) duplicateKey = key;
        keys.add(key);
        expectKey = false;
      }
      i = end - 1;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > maxDepth) return { tooDeep: true, duplicateKey };
      if (depth === 1) expectKey = topIsObject = c === OPEN_OBJECT;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
    } else if (c === COMMA && depth === 1) {
      expectKey = topIsObject;
    }
  }
  return { tooDeep: false, duplicateKey };
}

/** Index just past the JSON value that starts at `start` (no leading whitespace). */
function valueEnd(bytes: Buffer, start: number): number {
  const first = bytes[start];
  if (first === QUOTE) return stringEnd(bytes, start);
  if (first === OPEN_OBJECT || first === OPEN_ARRAY) {
    let depth = 0;
    for (let i = start; i < bytes.length; i++) {
      const c = bytes[i];
      if (c === QUOTE) i = stringEnd(bytes, i) - 1;
      else if (c === OPEN_OBJECT || c === OPEN_ARRAY) depth++;
      else if ((c === CLOSE_OBJECT || c === CLOSE_ARRAY) && --depth === 0) return i + 1;
    }
    return bytes.length;
  }
  // A number, true, false or null: up to the next delimiter or whitespace.
  let i = start;
  while (i < bytes.length && bytes[i] !== COMMA && bytes[i] !== CLOSE_OBJECT && bytes[i] !== CLOSE_ARRAY && !isSpace(bytes[i])) i++;
  return i;
}

function skipSpace(bytes: Buffer, i: number): number {
  while (isSpace(bytes[i])) i++;
  return i;
}

/** One member of a JSON object: its decoded key and the byte spans of the member and its value. */
export interface Member {
  key: string;
  /** Where the member starts (its key's opening quote) and ends (just past its value). */
  start: number;
  end: number;
  valueStart: number;
}

/** An object's members and where its closing brace is. */
export interface ObjectSpan {
  /** The opening and closing braces' indexes. */
  open: number;
  close: number;
  members: Member[];
}

/** The members of the object whose opening brace is at `open`, or null when no object starts there. */
export function objectMembers(bytes: Buffer, open: number): ObjectSpan | null {
  if (bytes[open] !== OPEN_OBJECT) return null;
  const members: Member[] = [];
  let i = skipSpace(bytes, open + 1);
  while (bytes[i] === QUOTE) {
    const start = i;
    const keyEnd = stringEnd(bytes, start);
    const raw = bytes.toString('utf8', start, keyEnd);
    const key = raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1);
    i = skipSpace(bytes, keyEnd);
    if (bytes[i] !== COLON) return null;
    const valueStart = skipSpace(bytes, i + 1);
    const end = valueEnd(bytes, valueStart);
    members.push({ key, start, end, valueStart });
    i = skipSpace(bytes, end);
    if (bytes[i] !== COMMA) break;
    i = skipSpace(bytes, i + 1);
  }
  return bytes[i] === CLOSE_OBJECT ? { open, close: i, members } : null;
}

/** The top-level object of a JSON body: where it opens, closes, and its members; null if the body is no object. */
export function topLevelObject(bytes: Buffer): ObjectSpan | null {
  return objectMembers(bytes, skipSpace(bytes, 0));
}

/**
 * The text of the object `span` of `bytes` (from its opening to its closing brace) with every
 * member whose key is in `drop` removed and `added` (member texts such as `"include_usage":true`)
 * appended before its closing brace. The kept members' bytes are copied as they are; only the
 * whitespace around removed members goes.
 */
export function editObject(bytes: Buffer, span: ObjectSpan, drop: ReadonlySet<string>, added: readonly string[]): Buffer {
  const kept = span.members.filter((m) => !drop.has(m.key));
  const tail = added.join(',');
  const comma = kept.length > 0 && tail !== '' ? ',' : '';
  if (kept.length === span.members.length) {
    // Nothing to remove: insert before the closing brace, every byte of the client's kept.
    return Buffer.concat([bytes.subarray(span.open, span.close), Buffer.from(comma + tail), bytes.subarray(span.close, span.close + 1)]);
  }
  const parts: Buffer[] = [bytes.subarray(span.open, span.open + 1)];
  kept.forEach((m, index) => {
    if (index > 0) parts.push(Buffer.from(','));
    parts.push(bytes.subarray(m.start, m.end));
  });
  parts.push(Buffer.from(`${comma}${tail}}`));
  return Buffer.concat(parts);
}

/**
 * `bytes`, a JSON object whose top level is `top`, with the members named in `set` given these
 * values (JSON texts): every copy the client sent of them is removed and the gateway's is
 * appended last, so the upstream reads the gateway's whichever copy of a duplicate key its parser
 * keeps. Everything else is copied byte for byte.
 */
export function setTopLevelMembers(bytes: Buffer, top: ObjectSpan, set: ReadonlyMap<string, string>): Buffer {
  const added = [...set].map(([key, value]) => `${JSON.stringify(key)}:${value}`);
  const edited = editObject(bytes, top, new Set(set.keys()), added);
  return Buffer.concat([bytes.subarray(0, top.open), edited, bytes.subarray(top.close + 1)]);
}

/**
 * `bytes`, a JSON text whose value is an object, with `added` (member texts) appended before its
 * closing brace, found without reading the body: it is the last byte that is not whitespace.
 * `hasMembers`: whether the object has a member already (a comma goes first). Null when the last
 * byte is no closing brace (then the caller takes the scanning path).
 */
export function appendTopLevelMembers(bytes: Buffer, hasMembers: boolean, added: readonly string[]): Buffer | null {
  let close = bytes.length - 1;
  while (close >= 0 && isSpace(bytes[close])) close--;
  if (close < 0 || bytes[close] !== CLOSE_OBJECT) return null;
  return Buffer.concat([bytes.subarray(0, close), Buffer.from((hasMembers ? ',' : '') + added.join(',')), bytes.subarray(close)]);
}

/** `bytes` with the value of `member` replaced by `value` (a JSON text); every other byte as it was. */
export function replaceValue(bytes: Buffer, member: Member, value: string): Buffer {
  return Buffer.concat([bytes.subarray(0, member.valueStart), Buffer.from(value), bytes.subarray(member.end)]);
}
