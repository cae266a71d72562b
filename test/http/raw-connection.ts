/**
 * A raw TCP connection to a test server, for what fetch() hides: requests sent byte by byte (slow
 * clients), headers Node's clients always add (Host) left out, answers read while the request is
 * still being sent, and whether (and how) the server ended the connection.
 */
import net from 'node:net';

export interface ParsedResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export class RawConnection {
  private static readonly open = new Set<RawConnection>();
  readonly socket: net.Socket;
  private received = Buffer.alloc(0);
  /** The server sent FIN (it ended the connection) or the connection is gone. */
  ended = false;
  closed = false;
  error: NodeJS.ErrnoException | null = null;
  private readonly waiters: (() => void)[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    RawConnection.open.add(this);
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', (err) => {
      this.error = err;
    });
    socket.on('close', () => {
      RawConnection.open.delete(this);
      this.ended = true;
      this.closed = true;
      this.wake();
    });
  }

  /** Destroys every connection still open (for afterEach). */
  static destroyAll(): void {
    for (const conn of RawConnection.open) conn.destroy();
  }

  static connect(url: string): Promise<RawConnection> {
    const { port, hostname } = new URL(url);
    return new Promise((resolve, reject) => {
      // Half-open allowed: the client may go on sending after the server's FIN, as a careless or
      // hostile one would.
      const socket = net.connect({ port: Number(port), host: hostname, allowHalfOpen: true });
      socket.once('connect', () => resolve(new RawConnection(socket)));
      socket.once('error', reject);
    });
  }

  get text(): string {
    return this.received.toString('latin1');
  }

  /** Writes unless the connection is gone; true when written. */
  write(data: string | Buffer): boolean {
    if (this.socket.destroyed || !this.socket.writable) return false;
    this.socket.write(data);
    return true;
  }

  /** Resolves once `condition` holds, checked whenever something arrives; rejects after `ms` with `what`. */
  until(what: string, condition: () => boolean, ms = 15_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!condition()) return false;
        clearTimeout(timer);
        resolve();
        return true;
      };
      const timer = setTimeout(() => {
        reject(new Error(`gave up waiting until ${what}; received ${JSON.stringify(this.text.slice(0, 500))}`));
      }, ms);
      if (check()) return;
      const waiter = () => {
        if (!check()) this.waiters.push(waiter);
      };
      this.waiters.push(waiter);
    });
  }

  /** The first complete response received, or null. */
  firstResponse(): ParsedResponse | null {
    return parseResponses(this.text)[0] ?? null;
  }

  /** Waits for the first complete response. */
  async response(ms?: number): Promise<ParsedResponse> {
    await this.until('a complete response arrived', () => this.firstResponse() !== null || this.closed, ms);
    const response = this.firstResponse();
    if (response === null) throw new Error(`connection closed without a complete response: ${JSON.stringify(this.text.slice(0, 500))}`);
    return response;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const waiting = this.waiters.splice(0);
    for (const waiter of waiting) waiter();
  }
}

/** Splits received bytes into the complete responses they hold (Content-Length or chunked; 1xx skipped). */
export function parseResponses(text: string): ParsedResponse[] {
  const responses: ParsedResponse[] = [];
  let rest = text;
  for (;;) {
    const split = rest.indexOf('\r\n\r\n');
    if (split === -1) return responses;
    const [statusLine, ...lines] = rest.slice(0, split).split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1]);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    if (status >= 100 && status < 200) {
      rest = rest.slice(split + 4);
      continue;
    }
    if (headers['transfer-encoding'] === 'chunked') {
      const chunked = dechunk(rest.slice(split + 4));
      if (chunked === null) return responses;
      responses.push({ status, headers, body: chunked.body });
      rest = chunked.rest;
      continue;
    }
    const length = Number(headers['content-length'] ?? 0);
    const body = rest.slice(split + 4, split + 4 + length);
    if (body.length < length) return responses;
    responses.push({ status, headers, body });
    rest = rest.slice(split + 4 + length);
  }
}

/** A complete chunked body at the start of `text` and what follows it, or null if incomplete. */
function dechunk(text: string): { body: string; rest: string } | null {
  let body = '';
  let at = 0;
  for (;;) {
    const lineEnd = text.indexOf('\r\n', at);
    if (lineEnd === -1) return null;
    const size = parseInt(text.slice(at, lineEnd), 16);
    if (Number.isNaN(size)) return null;
    if (size === 0) {
      if (text.length < lineEnd + 4) return null;
      return { body, rest: text.slice(lineEnd + 4) };
    }
    if (text.length < lineEnd + 2 + size + 2) return null;
    body += text.slice(lineEnd + 2, lineEnd + 2 + size);
    at = lineEnd + 2 + size + 2;
  }
}
