/**
 * The HTTP server's connections: how long a client may take to send a request, how long an idle
 * keep-alive connection stays open, what becomes of a connection whose request body is still
 * arriving when its answer is already out (a 401 or 413 before the body), and how connections end
 * on shutdown.
 *
 * - Bounds: the whole request (headers and body) must arrive within the request timeout, its
 *   headers within a shorter one; Node checks both on a schedule and the client gets a 408. These
 *   bound receiving only: an answer (a stream) takes as long as it needs.
 * - Early answers: the rest of the body is not the gateway's to read forever (Node reads it to
 *   its end, however slowly it comes). Closing at once instead, as Node does after a
 *   `Connection: close` answer, resets a client that is still uploading: its next write fails
 *   (EPIPE) and it never reads the answer. So the connection reads on, dropping what comes, for a
 *   bounded amount and a short time: a body that ends within them keeps the connection as the
 *   answer said, one that does not has its connection cut, the answer long delivered.
 * - Shutdown: every answer still to be written says `Connection: close`, and a connection whose
 *   answer was already under way (a stream) closes as soon as that answer is over, instead of
 *   idling in keep-alive until the grace period cuts it.
 */
import type { IncomingMessage, Server, ServerOptions as HttpServerOptions, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** The headers of a request must arrive within this (or the whole request's bound, if shorter). */
const HEADERS_TIMEOUT_MAX_MS = 20_000;
/** After an early answer: most body bytes read (and dropped) before the connection closes. */
export const DRAIN_MAX_BYTES = 16 * 1024 * 1024;
/**
 * Longest a connection stays open after an answer that ends it, for the client to read it: the
 * drain after an early answer, a socket-level answer (408) to a client that does not close.
 */
export const DRAIN_MAX_MS = 2_000;

export interface ServerTimeouts {
  /** Fastify's own options of the same names (it sets them on the server). */
  requestTimeout: number;
  keepAliveTimeout: number;
  /** Options for Node's http.createServer. */
  http: HttpServerOptions;
}

export function serverTimeouts(requestTimeoutMs: number, keepAliveTimeoutMs: number): ServerTimeouts {
  const headersTimeout = Math.min(requestTimeoutMs, HEADERS_TIMEOUT_MAX_MS);
  return {
    requestTimeout: requestTimeoutMs,
    keepAliveTimeout: keepAliveTimeoutMs,
    http: {
      requestTimeout: requestTimeoutMs,
      headersTimeout,
      // Node enforces both bounds only when it checks, every this often (30 s by default): a
      // quarter of the headers bound keeps the overrun small.
      connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(headersTimeout / 4))),
      // The gateway checks Host itself (request-input.ts), so that the 400 has the error shape.
      requireHostHeader: false,
    },
  };
}

/**
 * Call before answering a request whose body may still be arriving (an error answered before the
 * body was read, or instead of reading it). Once the answer is written, the rest of the body is
 * read and dropped, up to DRAIN_MAX_BYTES and DRAIN_MAX_MS; a body that ends within them leaves
 * the connection as the answer said (kept alive, or closed), one that does not has its connection
 * cut. When the answer closes the connection (`Connection: close`, as Fastify answers a body it
 * refused), the server half-closes first, so the client knows it has the whole answer.
 */
export function drainAfterAnswer(req: IncomingMessage, res: ServerResponse): void {
  if (req.complete || res.headersSent || !hasBody(req)) return;
  const socket = req.socket;
  if (Object.prototype.hasOwnProperty.call(socket, 'destroySoon')) return; // arranged already
  let closeAfterDrain = false;
  // Node ends a `Connection: close` connection with destroySoon() once its answer is written:
  // after the drain instead.
  socket.destroySoon = () => {
    closeAfterDrain = true;
    if (socket.writable) socket.end();
  };
  const done = () => {
    delete (socket as Partial<Socket>).destroySoon; // the prototype's again
    if (closeAfterDrain) socket.destroySoon();
  };
  // Runs after Node's own 'finish' handler, which has decided to keep or close the connection.
  res.once('finish', () => {
    if (req.complete || socket.destroyed) return done();
    let drained = 0;
    const cut = () => socket.destroy();
    const timer = setTimeout(cut, DRAIN_MAX_MS);
    // Taken off again once drained: a kept-alive connection answers many such requests.
    const stopTimer = () => clearTimeout(timer);
    socket.once('close', stopTimer);
    req.on('data', (chunk: Buffer) => {
      drained += chunk.length;
      if (drained > DRAIN_MAX_BYTES) cut();
    });
    req.once('end', () => {
      stopTimer();
      socket.off('close', stopTimer);
      done();
    });
    req.resume();
  });
}

/** Whether a request is framed with a body (a GET without Content-Length has none to wait for). */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return length === undefined ? req.headers['transfer-encoding'] !== undefined : length !== '0';
}

/** Answers still to be written on a connection, and the one being written (Node's own field). */
type HttpSocket = Socket & { _httpMessage?: ServerResponse | null };

/** Knows the server's open connections, to end each as soon as it can once shutdown begins. */
export class ConnectionLifecycle {
  private readonly sockets = new Set<HttpSocket>();
  private closing = false;

  constructor(server: Server) {
    server.on('connection', (socket: HttpSocket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  get isClosing(): boolean {
    return this.closing;
  }

  /**
   * Shutdown begins (before the server stops listening): each answer not yet started will close
   * its connection; a connection whose answer is under way closes once that answer is over; one
   * with no answer in progress (idle in keep-alive, or its client still sending headers) closes now.
   */
  beginShutdown(): void {
    this.closing = true;
    for (const socket of this.sockets) closeWhenAnswered(socket);
  }
}

/** Closes a connection now if no answer is in progress on it, else once that answer is over. */
function closeWhenAnswered(socket: HttpSocket): void {
  const res = socket._httpMessage;
  if (res === null || res === undefined || res.writableFinished) return void socket.destroySoon();
  // Node closes the connection after an answer that says so.
  if (!res.headersSent) return void res.setHeader('connection', 'close');
  // After Node's own 'finish' handler, which hands the connection to a pipelined next answer, if any.
  res.once('finish', () => closeWhenAnswered(socket));
}
