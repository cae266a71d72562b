/**
 * The real tokenizer (gpt-tokenizer, o200k_base), used only when an upstream reports no usage. It
 * runs in a worker thread, loaded on first use and stopped after 15 s idle: loading takes a few
 * hundred milliseconds and 60-80 MB of memory, which the request path should neither wait for nor
 * keep (a stopped worker gives most of that back).
 * (gpt-tokenizer rather than js-tiktoken: a third of the memory and a faster load.)
 */
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const IDLE_MS = 15_000;

// Plain CommonJS so it runs the same from TypeScript sources (tests) and from dist/.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { encode } = require(workerData.encoding);
parentPort.on('message', ({ id, texts }) => {
  try {
    parentPort.postMessage({ id, counts: texts.map((t) => (t.length === 0 ? 0 : encode(t, { allowedSpecial: 'all' }).length)) });
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message ? err.message : err) });
  }
});
`;

interface Pending {
  resolve: (counts: number[]) => void;
  reject: (err: Error) => void;
}

/** One thread and the counts it was sent: a thread that ends fails its own counts, never a newer one's. */
interface Thread {
  worker: Worker;
  pending: Map<number, Pending>;
}

class TokenizerWorker {
  private thread: Thread | null = null;
  private nextId = 0;
  private idleTimer: NodeJS.Timeout | null = null;

  private start(): Thread {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { encoding: require.resolve('gpt-tokenizer/encoding/o200k_base') },
    });
    worker.unref();
    const thread: Thread = { worker, pending: new Map() };
    worker.on('message', (message: { id: number; counts?: number[]; error?: string }) => {
      const waiting = thread.pending.get(message.id);
      if (waiting === undefined) return;
      thread.pending.delete(message.id);
      if (message.counts) waiting.resolve(message.counts);
      else waiting.reject(new Error(`tokenizer: ${message.error}`));
      this.scheduleIdleStop(thread);
    });
    const fail = (err: Error) => {
      for (const waiting of thread.pending.values()) waiting.reject(err);
      thread.pending.clear();
      if (this.thread === thread) this.thread = null;
    };
    worker.on('error', fail);
    worker.on('exit', () => fail(new Error('tokenizer worker stopped')));
    return thread;
  }

  private scheduleIdleStop(thread: Thread): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    if (thread.pending.size > 0 || this.thread !== thread) return;
    this.idleTimer = setTimeout(() => void this.stop(), IDLE_MS);
    this.idleTimer.unref();
  }

  count(texts: string[]): Promise<number[]> {
    if (texts.every((t) => t.length === 0)) return Promise.resolve(texts.map(() => 0));
    // A thread being stopped is already forgotten: this count goes to a new one.
    const thread = (this.thread ??= this.start());
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      thread.pending.set(id, { resolve, reject });
      thread.worker.postMessage({ id, texts });
    });
  }

  async stop(): Promise<void> {
    const thread = this.thread;
    this.thread = null;
    if (thread !== null) await thread.worker.terminate();
  }
}

const shared = new TokenizerWorker();

/** Token counts of each text, with the real tokenizer. */
export function countTokensOf(texts: string[]): Promise<number[]> {
  return shared.count(texts);
}

/** Stops the tokenizer thread now (it restarts on the next count). */
export function stopTokenizer(): Promise<void> {
  return shared.stop();
}
