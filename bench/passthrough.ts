/**
 * The floor for a Node proxy: `node --import tsx bench/passthrough.ts <port> <upstream origin>`.
 * node:http server + one undici Pool to the upstream, nothing else: no auth, no limits, no
 * parsing, no logging. Method, path, headers and body go up as they came (hop-by-hop headers
 * dropped), status, headers and body come back the same way, streamed both ways (SSE chunks are
 * written as they arrive). What the gateway costs above this is the cost of what it does.
 * Prints `listening <port>` when ready; exits on SIGTERM/SIGINT or when its parent goes away.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { Pool, type Dispatcher } from 'undici';

const port = Number(process.argv[2] ?? 0);
const upstream = process.argv[3];
if (!upstream) throw new Error('usage: passthrough.ts <port> <upstream origin>');

const pool = new Pool(upstream, { connections: null, keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0 });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'proxy-connection', 'upgrade', 'te', 'trailer']);

function strip(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP.has(name)) out[name] = value;
  return out;
}

const server = createServer((req, res) => {
  const abort = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  pool.request(
    {
      method: req.method as Dispatcher.HttpMethod,
      path: req.url ?? '/',
      headers: strip(req.headers),
      body: hasBody ? req : null,
      signal: abort.signal,
    },
    (err, data) => {
      if (err) {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
        res.end('{"error":{"message":"upstream unreachable","type":"api_error","code":"upstream_unreachable","param":null}}');
        return;
      }
      res.writeHead(data.statusCode, strip(data.headers));
      // pipe, not stream.pipeline: pipeline aborts an AbortController of its own (a DOMException)
      // on every successful end, a cost no lean proxy pays.
      data.body.on('error', () => res.destroy());
      data.body.pipe(res);
    },
  );
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => process.stdout.write(`listening ${(server.address() as { port: number }).port}\n`));

const stop = () => {
  server.closeAllConnections();
  server.close(() => void pool.close().finally(() => process.exit(0)));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);
