/**
 * Secret redaction: removes every configured secret (upstream key, proxy keys, admin key) and
 * anything shaped like a bearer token or an OpenAI key from text and objects, and whatever an
 * object holds under a credential's name (`authorization`, `cookie`, `apiKey`...), before they
 * reach a log line, an error body or, with INSECURE_DEBUG, a client.
 *
 * What an upstream answers with 2xx (headers and bodies) is only cleared of the configured
 * secrets (`secrets()`, `maskSecrets()`, `scrubber()`): a model may write "sk-..." or "Bearer ..."
 * in a completion, and that is the client's to read. The common case, no secret in the text, costs
 * one `includes` / `indexOf` per secret.
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

export class Redactor {
  private readonly secrets: string[];
  /** The secrets as UTF-8 bytes, longest first, for scanning bodies without decoding them. */
  private readonly secretBytes: Buffer[];
  /** One scan that finds whether a string needs any redaction at all (the common answer is no). */
  private readonly anything: RegExp;
  /** The longest secret's length in bytes (0 without secrets): a stream holds back one byte less. */
  readonly longestSecretBytes: number;

  constructor(secrets: Iterable<string | null | undefined>) {
    // Longest first, so a secret that contains another is removed whole.
    this.secrets = [...new Set([...secrets].filter((s): s is string => typeof s === 'string' && s.length > 0))].sort(
      (a, b) => b.length - a.length,
    );
    this.secretBytes = this.secrets.map((s) => Buffer.from(s, 'utf8')).sort((a, b) => b.length - a.length);
    this.longestSecretBytes = this.secretBytes[0]?.length ?? 0;
    const alternatives = [...this.secrets.map(escapeRegExp), ...TOKEN_PATTERNS.map((p) => p.source)];
    this.anything = new RegExp(alternatives.join('|'), 'i');
  }

  /** Whether `input` contains one of the configured secrets (not the token patterns). */
  hasSecret(input: string): boolean {
    for (const secret of this.secrets) if (input.includes(secret)) return true;
    return false;
  }

  /** `input` with every configured secret replaced by `[REDACTED]` (the token patterns stay). */
  secretsOnly(input: string): string {
    if (!this.hasSecret(input)) return input;
    let out = input;
    for (const secret of this.secrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    return out;
  }

  /**
   * `bytes` with every configured secret overwritten by as many `*` (so a declared length stays
   * right and JSON stays JSON): `bytes` itself when there is none, else a masked copy.
   */
  maskSecrets(bytes: Buffer): Buffer {
    let out = bytes;
    for (const secret of this.secretBytes) {
      let at = out.indexOf(secret);
      if (at === -1) continue;
      if (out === bytes) out = Buffer.from(bytes);
      for (; at !== -1; at = out.indexOf(secret, at + secret.length)) out.fill(MASK, at, at + secret.length);
    }
    return out;
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
    let out = input;
    for (const secret of this.secrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
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
 * two chunks, so the last `longest secret − 1` bytes of each chunk are held back and scanned again
 * with the next one (no secret can hide in fewer bytes than that); `end()` hands over the rest.
 * Without secrets nothing is held back. Per chunk: one `indexOf` per secret.
 */
export class SecretScrubber {
  private tail: Buffer | null = null;
  private readonly keep: number;

  constructor(private readonly redactor: Redactor) {
    this.keep = Math.max(0, redactor.longestSecretBytes - 1);
  }

  /** What of `chunk` (and the bytes held back before it) may go on now, masked. */
  write(chunk: Buffer): Buffer {
    if (this.keep === 0) return chunk;
    const data = this.redactor.maskSecrets(this.tail === null ? chunk : Buffer.concat([this.tail, chunk]));
    if (data.length <= this.keep) {
      this.tail = data;
      return EMPTY;
    }
    const cut = data.length - this.keep;
    this.tail = Buffer.from(data.subarray(cut));
    return data.subarray(0, cut);
  }

  /** The bytes still held back (already masked): the stream's last ones. */
  end(): Buffer {
    const rest = this.tail ?? EMPTY;
    this.tail = null;
    return rest;
  }
}

const EMPTY = Buffer.alloc(0);
