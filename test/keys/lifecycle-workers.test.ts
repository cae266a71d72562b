/**
 * Revocation, expiry, rotation and deletion of a stored key across 2 cluster workers: the real
 * server as a child process (PROXYGPT_WORKERS=2, admin key, no environment proxy key), several
 * keep-alive connections that land on both workers (checked with the worker pid each request's
 * log line carries), and every change made through the admin API takes effect on the very next
 * request of every connection. No sleeping: expiry is moved into the past with PATCH.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'undici';
import { chatBody } from '../helpers.js';
import { ADMIN_KEY } from './helpers.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import type { ServerProcess } from '../support/server-process.js';

const CONNECTIONS = 6;

let server: ServerProcess;
let base: string;
let gateway: GatewayProcess | undefined;
/** One keep-alive connection each (an undici Client is a single connection). */
let clients: Client[] = [];

beforeAll(async () => {
  gateway = await startGatewayProcess(
    {
      PROXYGPT_ADMIN_KEY: ADMIN_KEY,
      PROXYGPT_WORKERS: '2',
      // info: every proxied call logs one line with its worker's pid and its request id.
      LOG_LEVEL: 'info',
    },
    { workersListening: 2 },
  );
  ({ server } = gateway);
  base = server.base;
  clients = Array.from({ length: CONNECTIONS }, () => new Client(base, { pipelining: 1, keepAliveTimeout: 60_000 }));
}, 30_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.destroy()));
  await gateway?.stop();
}, 15_000);

interface Answer {
  status: number;
  requestId: string;
  body: Record<string, unknown>;
}

async function send(client: Client, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, authorization: string, body?: string): Promise<Answer> {
  const res = await client.request({
    method,
    path,
    headers: { authorization, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body,
  });
  const text = await res.body.text();
  return { status: res.statusCode, requestId: String(res.headers['x-proxygpt-request-id']), body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

const chat = (client: Client, secret: string) => send(client, 'POST', '/v1/chat/completions', `Bearer ${secret}`, chatBody());
const adminCall = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown) =>
  send(clients[0]!, method, `/admin${path}`, `Bearer ${ADMIN_KEY}`, body === undefined ? undefined : JSON.stringify(body));

/** The pid of the worker that logged request `requestId` (waits for its log line). */
async function workerOf(requestId: string): Promise<number> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    for (const line of server.stdout().split('\n')) {
      if (!line.startsWith('{') || !line.includes(requestId)) continue;
      const entry = JSON.parse(line) as { reqId?: string; pid?: number; msg?: string };
      if (entry.reqId === requestId && entry.msg === 'proxied' && entry.pid !== undefined) return entry.pid;
    }
    if (Date.now() > deadline) throw new Error(`no log line for request ${requestId}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Sends one chat per connection and returns the statuses (in connection order). */
async function everyConnection(secret: string): Promise<Answer[]> {
  return Promise.all(clients.map((c) => chat(c, secret)));
}

describe('a stored key across 2 workers', () => {
  let id: string;
  let secret: string;

  it('is usable on every connection, and the connections are served by both workers', async () => {
    const created = await adminCall('POST', '/keys', { name: 'shared-by-workers', requests_per_day: 1_000 });
    expect(created.status).toBe(201);
    id = String(created.body.id);
    secret = String(created.body.key);

    const pidsByConnection: number[][] = clients.map(() => []);
    for (let round = 0; round < 2; round++) {
      const answers = await everyConnection(secret);
      expect(answers.map((a) => a.status)).toEqual(clients.map(() => 200));
      for (const [i, a] of answers.entries()) pidsByConnection[i]!.push(await workerOf(a.requestId));
    }
    // Keep-alive: each connection stays with its worker; together they reach both workers.
    for (const pids of pidsByConnection) expect(new Set(pids).size).toBe(1);
    const workers = new Set(pidsByConnection.map((p) => p[0]));
    expect(workers.size).toBe(2);
    expect(workers.has(server.child.pid!)).toBe(false);
  });

  it('revoked: the very next request on every connection is 401; re-enabled: 200 again', async () => {
    const revoked = await adminCall('POST', `/keys/${id}/revoke`);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ disabled: true, status: 'disabled' });

    const answers = await everyConnection(secret);
    expect(answers.map((a) => a.status)).toEqual(clients.map(() => 401));
    for (const a of answers) expect(a.body).toMatchObject({ error: { code: 'invalid_api_key', message: expect.stringMatching(/disabled/) } });
    const status = await Promise.all(clients.map((c) => send(c, 'GET', '/ratelimit', `Bearer ${secret}`)));
    expect(status.map((s) => s.status)).toEqual(clients.map(() => 401));

    expect((await adminCall('PATCH', `/keys/${id}`, { disabled: false })).status).toBe(200);
    expect((await everyConnection(secret)).map((a) => a.status)).toEqual(clients.map(() => 200));
  });

  it('expired (expires_at moved into the past): 401 on every connection; expiry cleared: 200', async () => {
    const past = new Date(Date.now() - 60_000).toISOString();
    const updated = await adminCall('PATCH', `/keys/${id}`, { expires_at: past });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ status: 'expired', expires_at: past });

    const answers = await everyConnection(secret);
    expect(answers.map((a) => a.status)).toEqual(clients.map(() => 401));
    for (const a of answers) expect(a.body).toMatchObject({ error: { message: expect.stringMatching(/expired/) } });

    expect((await adminCall('PATCH', `/keys/${id}`, { expires_at: null })).status).toBe(200);
    expect((await everyConnection(secret)).map((a) => a.status)).toEqual(clients.map(() => 200));
  });

  it('rotated: the old secret is 401 and the new one 200 on every connection; deleted: 401', async () => {
    const rotated = await adminCall('POST', `/keys/${id}/rotate`);
    expect(rotated.status).toBe(200);
    const fresh = String(rotated.body.key);
    expect(fresh).toMatch(/^pgpt-/);
    expect(fresh).not.toBe(secret);
    expect(rotated.body.id).toBe(id);

    expect((await everyConnection(secret)).map((a) => a.status)).toEqual(clients.map(() => 401));
    expect((await everyConnection(fresh)).map((a) => a.status)).toEqual(clients.map(() => 200));

    expect((await adminCall('DELETE', `/keys/${id}`)).status).toBe(200);
    expect((await everyConnection(fresh)).map((a) => a.status)).toEqual(clients.map(() => 401));
    expect(server.stderr()).not.toMatch(/SQLITE_BUSY|exited/);
  });
});
