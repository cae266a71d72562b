/**
 * The usage recorder when the store goes away and comes back, on real stores: Postgres behind a
 * TCP proxy the test cuts and restores, and SQLite whose write lock another connection holds.
 * Records wait in the bounded queue and are written in order on recovery (read back straight from
 * the database), the log says so once each way, drops past the bound are counted and logged, a
 * close that cannot reach the store says what it lost, and a batch the store refuses for its own
 * reason is reported and not retried.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { openPostgresStore } from '../../src/store/postgres.js';
import { openSqlite } from '../../src/store/sqlite-db.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { UsageRecorder, type RecorderLog, type RecorderOptions } from '../../src/store/recorder.js';
import type { Store } from '../../src/contract.js';
import { tempDir } from '../helpers.js';
import { adminQuery, dropSchema, postgresTarget, uniqueSchema } from '../support/postgres.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { usageRecord } from './store-contract-fixtures.js';

const postgres = await postgresTarget();

interface Line {
  level: 'info' | 'warn' | 'error';
  msg: string;
  fields: object;
}

function captureLog(onLine?: (line: Line) => void): { log: RecorderLog; lines: Line[]; messages(level?: Line['level']): string[] } {
  const lines: Line[] = [];
  const add = (level: Line['level']) => (fields: object, msg: string) => {
    const line = { level, msg, fields };
    lines.push(line);
    onLine?.(line);
  };
  return {
    log: { info: add('info'), warn: add('warn'), error: add('error') },
    lines,
    messages: (level) => lines.filter((l) => level === undefined || l.level === level).map((l) => l.msg),
  };
}

/** Waits for a condition the recorder reaches on its own (its retry timer); the bound only catches a hang. */
async function until(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const rec = (requestId: string, ts = 1_000) => usageRecord({ ts, principal: 'key_1', requestId, promptTokens: 1 });
const ids = (prefix: string, from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`);

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe.skipIf(!postgres.available)('recorder on Postgres through a proxy that is cut and restored', () => {
  const schemas: string[] = [];
  afterAll(async () => {
    for (const schema of schemas) await dropSchema(postgres.url, schema);
  });

  async function setup(options: RecorderOptions = {}, onLine?: (line: Line) => void) {
    const target = new URL(postgres.url);
    const proxy: TcpProxy = await startTcpProxy(Number(target.port || 5432), target.hostname);
    cleanups.push(() => proxy.close());
    const through = new URL(postgres.url);
    through.hostname = '127.0.0.1';
    through.port = String(proxy.port);
    const schema = uniqueSchema('recorder');
    schemas.push(schema);
    const store = await openPostgresStore(through.toString(), { schema, poolSize: 1, connectTimeoutMs: 1_000 });
    cleanups.push(() => store.close());
    const errors: unknown[] = [];
    const capture = captureLog(onLine);
    const recorder = new UsageRecorder(store, (err) => errors.push(err), { intervalMs: 25, retryMaxMs: 100, log: capture.log, ...options });
    cleanups.push(() => recorder.close());
    const rows = async () =>
      (await adminQuery<{ request_id: string }>(postgres.url, `SELECT request_id FROM "${schema}".usage_events ORDER BY id`)).map((r) => r.request_id);
    return { proxy, store, recorder, errors, capture, rows };
  }

  it('queues records while the store is unreachable and writes them in order when it returns, logging once each way', async () => {
    const { proxy, recorder, errors, capture, rows } = await setup();
    for (const id of ids('r', 1, 3)) recorder.record(rec(id));
    await recorder.flush();
    expect(recorder.stats()).toStrictEqual({ queued: 0, dropped: 0, written: 3, failed: 0 });

    proxy.cut();
    for (const id of ids('r', 4, 7)) recorder.record(rec(id));
    await recorder.flush();
    expect(recorder.stats()).toStrictEqual({ queued: 4, dropped: 0, written: 3, failed: 0 });
    for (const id of ids('r', 8, 10)) recorder.record(rec(id));
    await recorder.flush();
    await recorder.flush();
    expect(recorder.stats()).toMatchObject({ queued: 7, written: 3 });
    expect(capture.messages()).toStrictEqual(['usage records are queued: store unreachable']);

    proxy.restore();
    await until(() => recorder.stats().queued === 0, 'the queue is written');
    expect(recorder.stats()).toStrictEqual({ queued: 0, dropped: 0, written: 10, failed: 0 });
    expect(await rows()).toStrictEqual(ids('r', 1, 10));
    expect(capture.messages()).toStrictEqual(['usage records are queued: store unreachable', 'store reachable again: wrote 7 queued records']);
    expect(capture.lines[1]).toMatchObject({ level: 'info', fields: { written: 7, dropped: 0 } });
    expect(errors).toStrictEqual([]);
  });

  it('drops records past the bound, counts them and logs the count; the queued ones are written in order', async () => {
    const { proxy, recorder, capture, rows } = await setup({ maxQueued: 5, maxBatch: 2 });
    proxy.cut();
    for (const id of ids('q', 1, 8)) recorder.record(rec(id));
    await recorder.flush();
    expect(recorder.stats()).toStrictEqual({ queued: 5, dropped: 3, written: 0, failed: 0 });
    expect(capture.messages('warn')).toHaveLength(2); // the queue is full (once), the store is unreachable (once)
    expect(capture.messages('warn').filter((m) => m.startsWith('usage record queue is full (5 records)'))).toHaveLength(1);

    proxy.restore();
    await until(() => recorder.stats().queued === 0, 'the queue is written');
    expect(recorder.stats()).toStrictEqual({ queued: 0, dropped: 3, written: 5, failed: 0 });
    expect(await rows()).toStrictEqual(ids('q', 1, 5));
    const recovery = capture.lines.at(-1)!;
    expect(recovery).toMatchObject({ level: 'warn', fields: { written: 5, dropped: 3 } });
    expect(recovery.msg).toBe('store reachable again: wrote 5 queued records; 3 records were dropped past the queue bound (5)');
  });

  it('close() keeps retrying while it may: the store back in time, every record is written', async () => {
    // The proxy comes back as soon as the recorder has noticed the outage, well within the close timeout.
    let proxy: TcpProxy | undefined;
    const { proxy: p, recorder, rows } = await setup({ closeTimeoutMs: 20_000 }, (line) => {
      if (line.msg.startsWith('usage records are queued')) proxy!.restore();
    });
    proxy = p;
    proxy.cut();
    for (const id of ids('c', 1, 4)) recorder.record(rec(id));
    await recorder.close();
    expect(recorder.stats()).toStrictEqual({ queued: 0, dropped: 0, written: 4, failed: 0 });
    expect(await rows()).toStrictEqual(ids('c', 1, 4));
  });

  it('close() that cannot reach the store gives up after its timeout and says how many records it lost', async () => {
    const { proxy, recorder, capture, rows } = await setup({ closeTimeoutMs: 200 });
    recorder.record(rec('kept'));
    await recorder.flush();
    proxy.cut();
    for (const id of ids('lost', 1, 3)) recorder.record(rec(id));
    await recorder.close();
    expect(recorder.stats()).toStrictEqual({ queued: 0, dropped: 3, written: 1, failed: 0 });
    expect(capture.lines.at(-1)).toMatchObject({ level: 'error', msg: 'store unreachable at shutdown: 3 usage records were not written', fields: { lost: 3 } });
    proxy.restore();
    expect(await rows()).toStrictEqual(['kept']);
  });

  it('a batch the store refuses for its own reason goes to onError, is counted as failed and is not retried', async () => {
    const { recorder, errors, capture, rows } = await setup();
    recorder.record({ ...rec('bad'), costMicroUsd: 1.5 }); // not an integer: Postgres refuses the BIGINT
    await recorder.flush();
    expect(recorder.stats()).toStrictEqual({ queued: 0, dropped: 0, written: 0, failed: 1 });
    expect(errors).toHaveLength(1);
    expect(capture.lines).toStrictEqual([]);
    recorder.record(rec('good'));
    await recorder.flush();
    expect(await rows()).toStrictEqual(['good']);
  });
});

describe('recorder on SQLite whose write lock another connection holds', () => {
  async function setup(options: RecorderOptions = {}) {
    const dir = tempDir();
    const file = join(dir, 'proxygpt.db');
    const store: Store = new SqliteStore(openSqlite(file, 20)); // waits 20 ms for the lock, then SQLITE_BUSY
    await store.migrate();
    const other = openSqlite(file, 0);
    const capture = captureLog();
    const errors: unknown[] = [];
    const recorder = new UsageRecorder(store, (err) => errors.push(err), { intervalMs: 60_000, log: capture.log, ...options });
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    cleanups.push(() => store.close());
    cleanups.push(() => void (other.open && other.close()));
    cleanups.push(() => recorder.close());
    return { store, other, recorder, capture, errors };
  }

  it('queues while the database is locked and writes the records once it is free', async () => {
    const { store, other, recorder, capture, errors } = await setup();
    other.exec('BEGIN IMMEDIATE');
    for (const id of ids('s', 1, 3)) recorder.record(rec(id));
    await recorder.flush();
    expect(recorder.stats()).toStrictEqual({ queued: 3, dropped: 0, written: 0, failed: 0 });
    expect(capture.messages()).toStrictEqual(['usage records are queued: store unreachable']);
    other.exec('COMMIT');
    await recorder.flush();
    expect(recorder.stats()).toStrictEqual({ queued: 0, dropped: 0, written: 3, failed: 0 });
    expect(capture.messages()).toStrictEqual(['usage records are queued: store unreachable', 'store reachable again: wrote 3 queued records']);
    expect((await store.usage({ sinceMs: 0, untilMs: 2_000 })).total).toMatchObject({ requests: 3, promptTokens: 3 });
    expect(errors).toStrictEqual([]);
  });

  it('a full batch is written without waiting for the interval, in batches of maxBatch', async () => {
    const { store, recorder } = await setup({ maxBatch: 2 });
    recorder.record(rec('b1'));
    expect(recorder.stats()).toMatchObject({ queued: 1, written: 0 });
    recorder.record(rec('b2'));
    await until(() => recorder.stats().written === 2, 'the full batch is written');
    for (const id of ids('m', 1, 5)) recorder.record(rec(id));
    await recorder.flush();
    expect(recorder.stats()).toStrictEqual({ queued: 0, dropped: 0, written: 7, failed: 0 });
    expect((await store.usage({ sinceMs: 0, untilMs: 2_000 })).total.requests).toBe(7);
  });

  it('without a log, the outage is still reported, through onError', async () => {
    const dir = tempDir();
    const file = join(dir, 'proxygpt.db');
    const store = new SqliteStore(openSqlite(file, 20));
    await store.migrate();
    const other = openSqlite(file, 0);
    const errors: unknown[] = [];
    const recorder = new UsageRecorder(store, (err) => errors.push(err), { intervalMs: 60_000 });
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }), () => store.close(), () => void other.close(), () => recorder.close());
    other.exec('BEGIN IMMEDIATE');
    recorder.record(rec('x'));
    await recorder.flush();
    other.exec('COMMIT');
    expect(errors.map((e) => (e as Error).message)).toStrictEqual(['usage records are queued: store unreachable']);
  });
});
