/**
 * The hostile-input corpus (issue 8, "Prove it"): requests a careless or hostile client sends,
 * each with the answer the README's contract promises, as data. corpus.test.ts runs every row over
 * real HTTP against one gateway (settings in CORPUS_ENV) in front of the mock upstream.
 *
 * A row is either built (method, path, headers, body; sent with fetch) or `raw`: the exact bytes
 * of the request, sent over a socket, for what fetch would normalise or refuse to send (framing,
 * control characters, header order and duplicates, paths with dot segments, HTTP/1.0). In raw
 * text, `{{KEY}}` stands for the row's key and `{{AUTH}}` for its whole `Authorization` line
 * (corpus-kit.ts). The rows are in corpus-bodies.ts and corpus-wire.ts.
 *
 * `by: 'gateway'` rows are answered by the gateway itself (in OpenAI's error shape, with `code`
 * when given): nothing goes upstream, nothing is reserved, counted or recorded (a 429 from the
 * limiter is a refused reservation). `by: 'upstream'` rows are forwarded: the mock upstream sees
 * them and its status comes back.
 */
import { contentTypes, json, multipartRows, numbers, size, types } from './corpus-bodies.js';
import { auth, framing, headers, paths, protocol, routes, slow } from './corpus-wire.js';
import type { HostileRequest } from './corpus-kit.js';

export { CORPUS_ENV, MAX_BODY, STORED_KEY_POLICY, type Category, type Expected, type HostileRequest, type KeyKind } from './corpus-kit.js';

export const CORPUS: readonly HostileRequest[] = [
  ...json,
  ...numbers,
  ...types,
  ...size,
  ...contentTypes,
  ...multipartRows,
  ...headers,
  ...auth,
  ...paths,
  ...framing,
  ...protocol,
  ...routes,
  ...slow,
];
