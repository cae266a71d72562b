/**
 * The Redis limiter's connection: one ioredis client set up so that no call waits longer than a
 * bound and nothing runs late. Commands are never queued while disconnected (an offline queue
 * would run a reservation after its caller gave up) nor resent after a reconnect; the client
 * reconnects by itself, forever, with a backoff of at most a second, so the limiter recovers when
 * Redis comes back with no restart. Failures become `LimiterUnavailable`, whose message names the
 * server without its password. Connection errors are always handled (never an unhandled 'error'
 * event) and reported once per outage.
 */
import { Redis, type RedisOptions } from 'ioredis';

/** The limiter cannot answer: Redis is down, unreachable, slow, or the limiter is closed. */
export class LimiterUnavailable extends Error {
  override readonly name = 'LimiterUnavailable';
}

/** `redis://host:port/db` with no user name or password, for messages. */
export function describeRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return 'Redis (unparsable URL)';
  }
}

/** Reply errors that mean the server cannot serve now (loading, failing over, busy, auth), not a bad call. */
const UNAVAILABLE_REPLY = /^(LOADING|BUSY|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|NOAUTH|WRONGPASS|NOPERM|OOM)\b/;

export interface ConnectionOptions {
  url: string;
  timeoutMs: number;
  /** Connection lost or refused: called once per outage (the first failure after being connected). */
  onError?: (err: LimiterUnavailable) => void;
}

export class RedisConnection {
  readonly client: Redis;
  private readonly where: string;
  private readonly timeoutMs: number;
  private closed = false;
  /** A connection error came after the last time the client was ready: calls fail at once. */
  private down = false;
  private lastError = '';
  private ready: Promise<void> | undefined;

  constructor(options: ConnectionOptions) {
    this.where = describeRedisUrl(options.url);
    this.timeoutMs = options.timeoutMs;
    const settings: RedisOptions = {
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.timeoutMs,
      connectTimeout: Math.max(1000, options.timeoutMs),
      retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 5), 1000),
      // A failover that turned our server into a replica: reconnect (the name may point elsewhere now).
      reconnectOnError: (err) => err.message.startsWith('READONLY'),
      enableAutoPipelining: true,
      connectionName: 'proxygpt-limiter',
    };
    this.client = new Redis(options.url, settings);
    this.client.on('error', (err: Error) => {
      this.lastError = err.message;
      if (this.down || this.closed) return;
      this.down = true;
      options.onError?.(this.unavailable(err.message));
    });
    this.client.on('ready', () => {
      this.down = false;
    });
  }

  unavailable(reason: string): LimiterUnavailable {
    return new LimiterUnavailable(`Redis limiter unavailable (${this.where}): ${reason}`);
  }

  private whenReady(): Promise<void> {
    this.ready ??= new Promise((resolve) => {
      this.client.once('ready', () => {
        this.ready = undefined;
        resolve();
      });
    });
    return this.ready;
  }

  /** A reply error of ours (a script refusing a total, a script bug) stays an error; the rest is unavailability. */
  private translate(err: unknown): Error {
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof Error && err.name === 'ReplyError' && !UNAVAILABLE_REPLY.test(message)) {
      return new Error(`Redis limiter script failed: ${message}`);
    }
    return this.unavailable(message);
  }

  /**
   * Runs `op` once connected, within `timeoutMs` in all (waiting for a connection included), or
   * rejects with LimiterUnavailable; at once while Redis is known to be down. A command that timed
   * out may still run on the server later: a reservation then counts although its caller was
   * refused (the safe side), and a hold it made expires by itself.
   */
  run<T>(op: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(this.unavailable('the limiter is closed'));
    if (this.down && this.client.status !== 'ready') return Promise.reject(this.unavailable(`not connected (${this.lastError})`));
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        const state = this.client.status === 'ready' ? `no answer within ${this.timeoutMs} ms` : `not connected within ${this.timeoutMs} ms`;
        reject(this.unavailable(this.lastError === '' ? state : `${state} (${this.lastError})`));
      }, this.timeoutMs);
      const start = () => {
        if (settled) return; // the caller has given up: never send it late
        op().then(
          (value) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            resolve(value);
          },
          (err: unknown) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            reject(this.translate(err));
          },
        );
      };
      if (this.client.status === 'ready') start();
      else void this.whenReady().then(start);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.client.status === 'ready') {
        await Promise.race([this.client.quit(), new Promise((resolve) => setTimeout(resolve, this.timeoutMs).unref())]);
      }
    } catch {
      // closing anyway
    }
    this.client.disconnect();
  }
}
