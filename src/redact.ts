/**
 * Secret redaction: removes every configured secret (upstream key, proxy keys, admin key) and
 * anything shaped like a bearer token or an OpenAI key from text and objects, and whatever an
 * object holds under a credential's name (`authorization`, `cookie`, `apiKey`...), before they
 * reach a log line, an error body or, with INSECURE_DEBUG, a client.
 *
 * What an upstream answers with 2xx (headers and bodies) is only cleared of the configured
 * secrets (`secretsOnly()`, `maskSecrets()`, `scrubber()`): a model may write "sk-..." or "Bearer ..."
 * in a completion, and that is the client's to read. The common case, no secret in the text, costs
 * one string search per secret (bench/redaction.ts measures it).
 */

const REDACTED = '[REDACTED]';
/** What each byte of a secret becomes where the length must stay (streamed bodies). */
const MASK = 0x2a; // '*'
const TRUNCATED = '[Truncated]';
const MAX_DEPTH = 8;
const TOKEN_PATTERNS = [/\bBearer\s+[^\s"',;]+/gi, /\bsk-[A-Za-z0-9_-]{6,}/g, /\bpgpt-[A-Za-z0-9_-]{6,}/g];
/**
 * Properties censored whatever they hold, at any depth: credentials of any scheme. Names are
 * compared lower-cased without `-` and `_`, so `x-api-key`, `api_key` and `apiKey` are one name.
 */
const SECRET_KEYS = new Set(['authorization', 'proxyauthorization', 'cookie', 'setcookie', 'apikey', 'xapikey', 'openaiapikey', 'adminkey']);
const credentialName = (key: string) => key.toLowerCase().replace(/[-_]/g, '');

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Where `secrets` occur in `text` (every occurrence, overlapping ones too), as [start, end) spans
 * merged where they overlap, in order: what to remove is the union, so that two secrets sharing a
 * stretch (the end of one is the start of the other) are removed whole, not one and a remnant.
 */
function secretSpans(text: string, secrets: readonly string[]): [number, number][] {
  const spans: [number, number][] = [];
  for (const secret of secrets) {
    for (let at = text.indexOf(secret); at !== -1; at = text.indexOf(secret, at + 1)) spans.push([at, at + secret.length]);
  }
  if (spans.length < 2) return spans;
  spans.sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [spans[0]!];
  for (const span of spans) {
    const last = merged[merged.length - 1]!;
    if (span[0] < last[1]) last[1] = Math.max(last[1], span[1]);
    else merged.push(span);
  }
  return merged;
}

/** `text` with each of `spans` replaced by `[REDACTED]`. */
function replaceSpans(text: string, spans: readonly [number, number][]): string {
  let out = '';
  let at = 0;
  for (const [start, end] of spans) {
    out += text.slice(at, start) + REDACTED;
    at = end;
  }
  return out + text.slice(at);
}
/**
 * How to find whether a text holds a secret at the least cost (measured: bench/redaction.ts): up
 * to a few secrets, one search each (from its rarest character: steady whatever the secrets look
 * like); above, one regex scan for all (a search each grows with their number).
 */
const ONE_SCAN_ABOVE = 4;

/** Letters from the most to the least frequent in English text. */
const LETTERS_BY_FREQUENCY = 'etaoinsrhldcumfpgwybvkxjqz';

/** How rare `c` is in the text of an answer (JSON, prose): higher is rarer. */
function rarity(c: string): number {
  if (' "\n,.:{}'.includes(c)) return 0;
  const letter = LETTERS_BY_FREQUENCY.indexOf(c);
  if (letter !== -1) return 1 + letter;
  if (c >= '0' && c <= '9') return 30;
  if (c >= 'A' && c <= 'Z') return 40;
  return 50; // '-', '_', other symbols
}

/** Where to start looking for `secret` from: its rarest character, at least 8 from its end. */
function anchorOffset(secret: string): number {
  let best = 0;
  for (let i = 1; i <= secret.length - Math.min(secret.length, 8); i++) if (rarity(secret[i]!) > rarity(secret[best]!)) best = i;
  return best;
}

/**
 * One secret to look for, in text. A string search runs as fast as the first character of what
 * it looks for is rare in the text (it stops at each occurrence to compare), so it looks for the
 * rest of the secret from its rarest character (the anchor), then checks the part before it.
 */
class Needle {
  private readonly offset: number;
  private readonly anchor: string;
  private readonly head: string;

  constructor(secret: string) {
    this.offset = anchorOffset(secret);
    this.anchor = secret.slice(this.offset);
    this.head = secret.slice(0, this.offset);
  }

  in(text: string): boolean {
    for (let at = text.indexOf(this.anchor, this.offset); at !== -1; at = text.indexOf(this.anchor, at + 1)) {
      if (this.offset === 0 || text.startsWith(this.head, at - this.offset)) return true;
    }
    return false;
  }
}

/** The same in bytes (`secret` given as Latin-1: one character per byte), without decoding them. */
class ByteNeedle {
  private readonly offset: number;
  private readonly anchor: Buffer;
  private readonly head: Buffer;

  constructor(secret: string) {
    this.offset = anchorOffset(secret);
    this.anchor = Buffer.from(secret.slice(this.offset), 'latin1');
    this.head = Buffer.from(secret.slice(0, this.offset), 'latin1');
  }

  in(bytes: Buffer): boolean {
    for (let at = bytes.indexOf(this.anchor, this.offset); at !== -1; at = bytes.indexOf(this.anchor, at + 1)) {
      if (this.offset === 0 || bytes.subarray(at - this.offset, at).equals(this.head)) return true;
    }
    return false;
  }
}


export class Redactor {
  private readonly secrets: string[];
  /** The secrets as UTF-8 bytes, longest first, for scanning bodies without decoding them. */
  private readonly secretBytes: Buffer[];
  /** The same bytes as Latin-1 strings (one character per byte), for a fast search in bytes. */
  private readonly secretLatin1: string[];
  /** One scan that finds whether a string needs any redaction at all (the common answer is no). */
  private readonly anything: RegExp;
  /** With more than a few secrets, one scan for all, in text and in bytes read as Latin-1 (else null). */
  private readonly anySecret: RegExp | null;
  private readonly anySecretLatin1: RegExp | null;
  /** With up to a few secrets, one search each, in text and in bytes (else empty). */
  private readonly needles: Needle[];
  private readonly byteNeedles: ByteNeedle[];
  /** The longest secret's length in bytes (0 without secrets): a stream holds back one byte less. */
  readonly longestSecretBytes: number;

  constructor(secrets: Iterable<string | null | undefined>) {
    // Longest first, so a secret that contains another is removed whole.
    this.secrets = [...new Set([...secrets].filter((s): s is string => typeof s === 'string' && s.length > 0))].sort(
      (a, b) => b.length - a.length,
    );
    this.secretBytes = this.secrets.map((s) => Buffer.from(s, 'utf8')).sort((a, b) => b.length - a.length);
    this.secretLatin1 = this.secretBytes.map((b) => b.toString('latin1'));
    this.longestSecretBytes = this.secretBytes[0]?.length ?? 0;
    const alternatives = [...this.secrets.map(escapeRegExp), ...TOKEN_PATTERNS.map((p) => p.source)];
    this.anything = new RegExp(alternatives.join('|'), 'i');
    const oneScan = this.secrets.length > ONE_SCAN_ABOVE;
    this.anySecret = oneScan ? new RegExp(this.secrets.map(escapeRegExp).join('|')) : null;
    this.anySecretLatin1 = oneScan ? new RegExp(this.secretLatin1.map(escapeRegExp).join('|')) : null;
    this.needles = oneScan ? [] : this.secrets.map((secret) => new Needle(secret));
    this.byteNeedles = oneScan ? [] : this.secretLatin1.map((secret) => new ByteNeedle(secret));
  }

  /** Whether `input` contains one of the configured secrets (not the token patterns). */
  hasSecret(input: string): boolean {
    if (this.anySecret !== null) return this.anySecret.test(input);
    for (const needle of this.needles) if (needle.in(input)) return true;
    return false;
  }

  /** `input` with every configured secret replaced by `[REDACTED]` (the token patterns stay). */
  secretsOnly(input: string): string {
    if (!this.hasSecret(input)) return input;
    return replaceSpans(input, secretSpans(input, this.secrets));
  }

  /**
   * `bytes` with every configured secret overwritten by as many `*` (so a declared length stays
   * right and JSON stays JSON): `bytes` itself when there is none, else a masked copy. A few
   * secrets are looked for in the bytes; many, in one regex scan of the bytes read as Latin-1 (one
   * character per byte, so positions are byte offsets).
   */
  maskSecrets(bytes: Buffer): Buffer {
    if (this.secretBytes.length === 0 || bytes.length === 0) return bytes;
    if (this.anySecretLatin1 === null) {
      if (!this.byteNeedles.some((needle) => needle.in(bytes))) return bytes; // the common case
    } else if (!this.anySecretLatin1.test(bytes.toString('latin1'))) {
      return bytes;
    }
    // One of ours is in there (rare): mask every occurrence of each.
    const out = Buffer.from(bytes);
    for (const [start, end] of this.byteSpans(bytes)) out.fill(MASK, start, end);
    return out;
  }

  /** Where the configured secrets are in `bytes`: merged [start, end) byte spans, in order. */
  byteSpans(bytes: Buffer): [number, number][] {
    return secretSpans(bytes.toString('latin1'), this.secretLatin1);
  }

  /**
   * Where the end of `bytes` may be the beginning of a secret cut off by the end of a chunk: the
   * first offset from which the rest of `bytes` is a (proper) prefix of a secret, or
   * `bytes.length` when none is. Looks at most at the last `longest secret − 1` bytes.
   */
  secretStartAtEnd(bytes: Buffer): number {
    const n = bytes.length;
    let from = n;
    for (const secret of this.secretBytes) {
      for (let p = Math.max(0, n - secret.length + 1); p < from; p++) {
        if (bytes[p] !== secret[0]) continue;
        let i = 1;
        while (p + i < n && bytes[p + i] === secret[i]) i++;
        if (p + i === n) {
          from = p;
          break;
        }
      }
    }
    return from;
  }

  /** A scrubber for one byte stream: masks secrets, also those cut across two chunks. */
  scrubber(): SecretScrubber {
    return new SecretScrubber(this);
  }

  /** Whether `input` contains anything to redact. */
  needed(input: string): boolean {
    return this.anything.test(input);
  }

  text(input: string): string {
    if (!this.anything.test(input)) return input;
    let out = this.secrets.length === 0 ? input : replaceSpans(input, secretSpans(input, this.secrets));
    for (const pattern of TOKEN_PATTERNS) {
      out = out.replace(pattern, (m) => (m.toLowerCase().startsWith('bearer') ? `Bearer ${REDACTED}` : REDACTED));
    }
    return out;
  }

  /**
   * Deep copy of a JSON-like value with every string redacted. Nesting deeper than the copy goes
   * is cut off (`[Truncated]`), never passed on unredacted.
   */
  value(input: unknown, depth = 0): unknown {
    if (typeof input === 'string') return this.text(input);
    if (input === null || typeof input !== 'object') return input;
    if (depth > MAX_DEPTH) return TRUNCATED;
    if (input instanceof Error) {
      const { code, cause } = input as Error & { code?: unknown };
      const copy: Record<string, unknown> = {
        type: input.name,
        message: this.text(input.message),
        ...(code === undefined ? {} : { code: this.value(code, depth + 1) }),
        stack: input.stack ? this.text(input.stack) : undefined,
        ...(cause === undefined ? {} : { cause: this.value(cause, depth + 1) }),
      };
      // pino's error serializer names the type after `constructor` (else every copy is an "Object").
      Object.defineProperty(copy, 'constructor', { value: input.constructor, enumerable: false });
      return copy;
    }
    if (Array.isArray(input)) return input.map((v) => this.value(v, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(input)) out[k] = v !== null && v !== undefined && SECRET_KEYS.has(credentialName(k)) ? REDACTED : this.value(v, depth + 1);
    return out;
  }
}

/**
 * Masks the configured secrets in one byte stream, chunk by chunk. A secret may arrive cut across
 * two chunks, so a chunk whose last bytes could begin a secret keeps them back (only those: no
 * copy in the common case) and scans them again joined to the next chunk; `end()` hands over what
 * is left. Per chunk: one search per secret, and a look at the chunk's last bytes.
 */
export class SecretScrubber {
  private held: Buffer | null = null;

  constructor(private readonly redactor: Redactor) {}

  /**
   * What of `chunk` (and the bytes held back before it) may go on now, masked. What is held back
   * stays as it came (unmasked), so that it is judged again whole with the next chunk: the end that
   * may begin a secret, and with it any secret found that reaches into that end (two secrets that
   * share a stretch are masked whole, whatever the split).
   */
  write(chunk: Buffer): Buffer {
    if (this.redactor.longestSecretBytes === 0) return chunk;
    const data = this.held === null ? chunk : Buffer.concat([this.held, chunk]);
    let from = this.redactor.secretStartAtEnd(data);
    const masked = this.redactor.maskSecrets(data);
    if (masked !== data && from < data.length) {
      for (const [start, end] of this.redactor.byteSpans(data)) if (start < from && end > from) from = start;
    }
    this.held = from === data.length ? null : Buffer.from(data.subarray(from));
    return from === data.length ? masked : masked.subarray(0, from);
  }

  /** The bytes still held back, masked: the stream's last ones. */
  end(): Buffer {
    const rest = this.held === null ? EMPTY : this.redactor.maskSecrets(this.held);
    this.held = null;
    return rest;
  }
}

const EMPTY = Buffer.alloc(0);
