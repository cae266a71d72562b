/**
 * Secret redaction: removes every configured secret (upstream key, proxy keys, admin key) and
 * anything shaped like a bearer token or an OpenAI key from text and objects, and whatever an
 * object holds under a credential's name (`authorization`, `cookie`, `apiKey`...), before they
 * reach a log line or, with INSECURE_DEBUG, a client.
 */

const REDACTED = '[REDACTED]';
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
  /** One scan that finds whether a string needs any redaction at all (the common answer is no). */
  private readonly anything: RegExp;

  constructor(secrets: Iterable<string | null | undefined>) {
    // Longest first, so a secret that contains another is removed whole.
    this.secrets = [...new Set([...secrets].filter((s): s is string => typeof s === 'string' && s.length > 0))].sort(
      (a, b) => b.length - a.length,
    );
    const alternatives = [...this.secrets.map(escapeRegExp), ...TOKEN_PATTERNS.map((p) => p.source)];
    this.anything = new RegExp(alternatives.join('|'), 'i');
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
