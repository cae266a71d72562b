/**
 * The real server as a child process beside the mock upstream, with a database of its own: what
 * the cluster tests each started and stopped alike (the mock, a temp dir, the upstream settings,
 * the process; and, when asked, a wait until every worker is listening, since the first worker
 * answers /healthz while the others may still be starting). `stop` ends all of it. Also the burst
 * of concurrent chat calls those tests send at a limit, and its count of admitted and refused.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { request, type Dispatcher } from 'undici';
import { startMockOpenAI, type MockOpenAI } from '../fixtures/mock-openai.js';
import { chatBody, PROXY_KEY, tempDir, UPSTREAM_KEY } from '../helpers.js';
import { startServerProcess, type ServerProcess } from './server-process.js';

export interface GatewayProcess {
  mock: MockOpenAI;
  server: ServerProcess;
  dir: string;
  stop(): Promise<void>;
}

/** The pids of the workers that have logged that they listen (needs LOG_LEVEL info). */
function listeningPids(server: ServerProcess): Set<number | undefined> {
  return new Set(
    server
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('{') && /listening/i.test(l))
      .map((l) => (JSON.parse(l) as { pid?: number }).pid),
  );
}

/**
 * Starts the mock and `src/main.ts` with OPENAI_API_KEY, OPENAI_BASE_URL (the mock) and
 * PROXYGPT_DATABASE_URL (a temp dir's file) plus `env`; with `workersListening`, waits (up to 20 s)
 * until that many workers have logged that they listen.
 */
export async function startGatewayProcess(env: Record<string, string>, options: { workersListening?: number } = {}): Promise<GatewayProcess> {
  const mock = await startMockOpenAI();
  const dir = tempDir();
  let server: ServerProcess | undefined;
  const stop = async () => {
    await server?.stop();
    await mock.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    server = await startServerProcess({ OPENAI_API_KEY: UPSTREAM_KEY, OPENAI_BASE_URL: mock.url, PROXYGPT_DATABASE_URL: join(dir, 'proxygpt.db'), ...env });
    const deadline = Date.now() + 20_000;
    while (listeningPids(server).size < (options.workersListening ?? 0)) {
      if (Date.now() > deadline || server.child.exitCode !== null) throw new Error(`not all ${options.workersListening} workers started: ${server.stdout()} ${server.stderr()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return { mock, server, dir, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** How many of these answers were admitted (200) and refused by a limit (429). */
export const countStatuses = (statuses: readonly number[]) => ({ ok: statuses.filter((s) => s === 200).length, limited: statuses.filter((s) => s === 429).length });

/** `count` chat calls at once to `base` with the proxy key (the mock answers each after `delayMs`), counted. */
export async function chatBurst(base: string, count: number, options: { dispatcher: Dispatcher; delayMs: number }): Promise<{ ok: number; limited: number }> {
  const send = async () => {
    const res = await request(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'application/json', 'x-mock-delay-ms': String(options.delayMs) },
      body: chatBody(),
      dispatcher: options.dispatcher,
    });
    await res.body.dump();
    return res.statusCode;
  };
  return countStatuses(await Promise.all(Array.from({ length: count }, send)));
}
