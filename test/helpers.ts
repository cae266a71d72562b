/**
 * Test helpers: start a real gateway (real SQLite file in a temp dir, real HTTP on loopback) in
 * front of the mock upstream, with an optional injected clock and captured log lines.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../src/config.js';
import { createApp, type App } from '../src/app.js';
import { startMockOpenAI, type MockOpenAI } from './fixtures/mock-openai.js';

export const UPSTREAM_KEY = 'sk-upstream-secret-0123456789abcdef';
export const PROXY_KEY = 'pgpt-test-key-aaaaaaaaaaaaaaaa';
export const OTHER_KEY = 'pgpt-test-key-bbbbbbbbbbbbbbbb';

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'proxygpt-test-'));
}

export interface TestGateway {
  url: string; // http://127.0.0.1:port
  app: App;
  mock: MockOpenAI;
  logs: string[];
  dir: string;
  close(): Promise<void>;
}

export interface GatewayOptions {
  env?: Record<string, string>;
  clock?: () => number;
  mock?: MockOpenAI;
}

export async function startGateway(options: GatewayOptions = {}): Promise<TestGateway> {
  const ownMock = options.mock === undefined;
  const mock = options.mock ?? (await startMockOpenAI());
  const dir = tempDir();
  const { config } = loadConfig({
    OPENAI_API_KEY: UPSTREAM_KEY,
    OPENAI_BASE_URL: mock.url,
    PROXYGPT_API_KEYS: `${PROXY_KEY},${OTHER_KEY}`,
    PROXYGPT_DATABASE_URL: join(dir, 'proxygpt.db'),
    LOG_LEVEL: 'info',
    // As before the setting existed: a test that closes with a stream open waits 5 s at most.
    PROXYGPT_SHUTDOWN_GRACE_MS: '5000',
    ...options.env,
  });
  const logs: string[] = [];
  const logDestination = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(chunk.toString('utf8'));
      done();
    },
  });
  const app = await createApp(config, { clock: options.clock, logDestination });
  await app.server.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    app,
    mock,
    logs,
    dir,
    async close() {
      await app.close();
      if (ownMock) await mock.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function authHeaders(key = PROXY_KEY): Record<string, string> {
  return { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
}

export const chatBody = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi there' }], ...extra });
