/**
 * `npm run bench` (first cut): added latency of one proxied call, sequential, gateway vs direct to
 * the mock upstream, interleaved round by round so machine noise hits both alike. The mock and the
 * gateway run as separate processes, as in production (limits on, usage recorded).
 * The full benchmark suite (throughput, streaming, limiter, memory, workers, peer) is issue #4.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { Pool } from 'undici';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3000);
const WARMUP = 300;
const BODY = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello bench' }] });

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

async function waitFor(url: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(url)).status < 500) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${url}`);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function timeCall(pool: Pool, path: string, headers: Record<string, string>): Promise<number> {
  const start = process.hrtime.bigint();
  const res = await pool.request({ method: 'POST', path, headers, body: BODY });
  await res.body.text();
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'proxygpt-bench-'));
  const children: ChildProcess[] = [];
  try {
    const mockPort = await freePort();
    const mock = spawn(process.execPath, ['--import', 'tsx', '-e', `import('./test/fixtures/mock-openai.ts').then(m => m.startMockOpenAI(${mockPort}))`], { stdio: 'inherit' });
    children.push(mock);
    await waitFor(`http://127.0.0.1:${mockPort}/v1/models`);

    const port = await freePort();
    const gateway = spawn(process.execPath, ['dist/main.js'], {
      stdio: 'inherit',
      env: {
        ...process.env,
        OPENAI_API_KEY: 'sk-bench-upstream-key-000000',
        OPENAI_BASE_URL: `http://127.0.0.1:${mockPort}/v1`,
        PROXYGPT_API_KEY: 'pgpt-bench-key-0123456789abcdef',
        USE_HOURLY_RATE_LIMIT: 'true',
        PROXYGPT_HOURLY_RATE_LIMIT: '100000000',
        USE_DAILY_RATE_LIMIT: 'true',
        PROXYGPT_DAILY_RATE_LIMIT: '100000000',
        PROXYGPT_DATABASE_URL: join(dir, 'bench.db'),
        PORT: String(port),
        LOG_LEVEL: 'warn',
      },
    });
    children.push(gateway);
    await waitFor(`http://127.0.0.1:${port}/healthz`);

    const direct = new Pool(`http://127.0.0.1:${mockPort}`, { connections: 1 });
    const viaGateway = new Pool(`http://127.0.0.1:${port}`, { connections: 1 });
    const headers = { 'content-type': 'application/json', authorization: 'Bearer pgpt-bench-key-0123456789abcdef' };
    const directMs: number[] = [];
    const gatewayMs: number[] = [];
    for (let i = 0; i < WARMUP + ROUNDS; i++) {
      const d = await timeCall(direct, '/v1/chat/completions', headers);
      const g = await timeCall(viaGateway, '/v1/chat/completions', headers);
      if (i >= WARMUP) {
        directMs.push(d);
        gatewayMs.push(g);
      }
    }
    const added = gatewayMs.map((g, i) => g - directMs[i]!).sort((a, b) => a - b);
    directMs.sort((a, b) => a - b);
    gatewayMs.sort((a, b) => a - b);
    console.log(`\nProxyGPT bench — ${cpus().length} CPUs, Node ${process.version}, ${ROUNDS} sequential rounds`);
    console.log(`direct to mock:   median ${percentile(directMs, 50).toFixed(3)} ms, p99 ${percentile(directMs, 99).toFixed(3)} ms`);
    console.log(`through gateway:  median ${percentile(gatewayMs, 50).toFixed(3)} ms, p99 ${percentile(gatewayMs, 99).toFixed(3)} ms`);
    console.log(`added by gateway: median ${percentile(added, 50).toFixed(3)} ms, p99 ${percentile(added, 99).toFixed(3)} ms`);
    await direct.close();
    await viaGateway.close();
  } finally {
    for (const child of children) child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
