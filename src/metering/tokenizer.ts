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

class TokenizerWorker {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private idleTimer: NodeJS.Timeout | null = null;

  private start(): Worker {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { encoding: require.resolve('gpt-tokenizer/encoding/o200k_base') },
    });
    worker.unref();
    worker.on('message', (message: { id: number; counts?: number[]; error?: string }) => {
      const waiting = this.pending.get(message.id);
      if (waiting === undefined) return;
      this.pending.delete(message.id);
      if (message.counts) waiting.resolve(message.counts);
      else waiting.reject(new Error(`tokenizer: ${message.error}`));
      this.scheduleIdleStop();
    });
    const fail = (err: Error) => {
      for (const waiting of this.pending.values()) waiting.reject(err);
      this.pending.clear();
      if (this.worker === worker) this.worker = null;
    };
    worker.on('error', fail);
    worker.on('exit', () => fail(new Error('tokenizer worker stopped')));
    return worker;
  }

  private scheduleIdleStop(): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    if (this.pending.size > 0) return;
    this.idleTimer = setTimeout(() => void this.stop(), IDLE_MS);
    this.idleTimer.unref();
  }

  count(texts: string[]): Promise<number[]> {
    if (texts.every((t) => t.length === 0)) return Promise.resolve(texts.map(() => 0));
    this.worker ??= this.start();
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker!.postMessage({ id, texts });
    });
  }

  async stop(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    if (worker !== null) await worker.terminate();
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
