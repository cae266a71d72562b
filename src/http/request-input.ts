/**
 * What the gateway accepts as input before any route runs: a Host header on HTTP/1.1 (checked
 * here rather than by Node, whose 400 has no body), safe paths only (no `..`, encoded or
 * not, no backslashes or NUL bytes), JSON bodies kept as the exact bytes received (forwarded
 * without re-serialisation) next to their parsed value, multipart bodies passed through raw, and
 * nothing else (415). JSON nested more than MAX_JSON_DEPTH levels is refused (400) here, before
 * admission: no honest request needs it, and code that walks a parsed value (an estimate, a copy,
 * JSON.stringify) would otherwise overflow the stack on it after the call was counted.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { scanJsonText } from '../call/json-bytes.js';
import { invalidJson, invalidPath, invalidRequest, missingHost } from '../errors.js';

/** Deepest nesting of arrays and objects accepted in a JSON body (the body itself is level 1); serde_json's default. */
export const MAX_JSON_DEPTH = 128;

declare module 'fastify' {
  interface FastifyRequest {
    /** The body bytes exactly as received, for forwarding. */
    rawBody: Buffer | null;
  }
}

/** Returns why a request path is unsafe to route or forward, or null when it is fine. */
export function unsafePathReason(url: string): string | null {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  if (!path.startsWith('/')) return 'the path must start with /';
  let decoded = path;
  // Decode repeatedly so that double-encoded dots (%252e) are caught too; a path still encoded
  // after that many rounds is no honest request (and could hide dots from this check).
  for (let i = 0; i < 4 && decoded.includes('%'); i++) {
    try {
      decoded = decodeURIComponent(decoded);
    } catch {
      return 'the path has malformed percent-encoding';
    }
  }
  if (decoded.includes('%')) return 'the path is percent-encoded too many times';
  if (decoded.includes('\0')) return 'the path contains a NUL byte';
  if (decoded.includes('\\')) return 'the path contains a backslash';
  if (decoded.includes('//')) return 'the path contains an empty segment';
  if (decoded.split('/').some((segment) => segment === '..' || segment === '.')) return 'the path contains a dot segment';
  return null;
}

export function installRequestInput(app: FastifyInstance, maxBodyBytes: number): void {
  app.decorateRequest('rawBody', null);

  app.addHook('onRequest', (request: FastifyRequest, _reply, done) => {
    if (request.headers.host === undefined && request.raw.httpVersion === '1.1') return done(missingHost());
    const reason = unsafePathReason(request.raw.url ?? '/');
    done(reason === null ? undefined : invalidPath(`Rejected request path: ${reason}.`));
  });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/json'], { parseAs: 'buffer', bodyLimit: maxBodyBytes }, (request, body, done) => {
    const bytes = body as Buffer;
    request.rawBody = bytes;
    if (bytes.length === 0) {
      // Admin actions (rotate, revoke) take no body; clients often still send the JSON content type.
      if (request.url.startsWith('/admin/')) return done(null, undefined);
      return done(invalidJson('The request body is empty; send a JSON object.'), undefined);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      // V8's message quotes the input; say where it broke without echoing the body back.
      const position = /position (\d+)/.exec((err as Error).message)?.[1];
      const where = position === undefined ? '' : ` (at position ${position})`;
      return done(invalidJson(`The request body is not valid JSON${where}.`), undefined);
    }
    const scan = scanJsonText(bytes, MAX_JSON_DEPTH);
    if (scan.tooDeep) {
      return done(invalidRequest(`The request body nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep; this gateway accepts at most ${MAX_JSON_DEPTH}.`), undefined);
    }
    if (scan.duplicateKey !== null) {
      // The gateway and the upstream could read different copies (a model, a budget): refuse.
      return done(invalidRequest(`The request body names ${JSON.stringify(scan.duplicateKey)} more than once; send each member once.`, scan.duplicateKey), undefined);
    }
    done(null, parsed);
  });
  app.addContentTypeParser(['multipart/form-data'], { parseAs: 'buffer', bodyLimit: maxBodyBytes }, (request, body, done) => {
    request.rawBody = body as Buffer;
    done(null, null);
  });
}
