/**
 * Gateways in front of several mock upstreams, from an upstreams file the test writes: keys in
 * the environment (KEY_A1, KEY_A2, KEY_B, AZURE_KEY, referenced as ${…}), an injectable clock
 * for breakers and Retry-After waits, and a port nothing listens on (a refused upstream).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMockOpenAI, type MockOpenAI } from '../fixtures/mock-openai.js';
import { PROXY_KEY, startGateway, type TestGateway } from '../helpers.js';

export const KEYS = {
  KEY_A1: 'sk-upstream-a1-0123456789abcdefghij',
  KEY_A2: 'sk-upstream-a2-0123456789abcdefghij',
  KEY_B: 'sk-upstream-b-0123456789abcdefghijk',
  AZURE_KEY: 'azure-upstream-key-0123456789abcdefg',
} as const;

/** A clock the test moves by hand. */
export interface ManualClock {
  (): number;
  advance(ms: number): void;
}

export function manualClock(start = 1_800_000_000_000): ManualClock {
  let now = start;
  return Object.assign(() => now, { advance: (ms: number) => void (now += ms) });
}

/** A loopback URL where nothing listens: connecting is refused at once. */
export async function refusedUrl(path = '/v1'): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}${path}`;
}

export interface RoutedGateway extends TestGateway {
  /** The upstreams file's path. */
  file: string;
}

export interface RoutedOptions {
  /** The upstreams file's content (written as JSON). */
  file: Record<string, unknown>;
  env?: Record<string, string>;
  clock?: () => number;
}

/** A gateway whose upstreams are `options.file`; its own mock (gw.mock) is not one of them. */
export async function startRoutedGateway(options: RoutedOptions): Promise<RoutedGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'proxygpt-upstreams-'));
  const file = join(dir, 'upstreams.json');
  writeFileSync(file, JSON.stringify(options.file));
  const unused = await startMockOpenAI();
  const gw = await startGateway({ mock: unused, clock: options.clock, env: { ...KEYS, PROXYGPT_UPSTREAMS: file, ...options.env } });
  return {
    ...gw,
    file,
    async close() {
      await gw.close();
      await unused.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An OpenAI-kind upstream entry for `mock`. */
export const openaiEntry = (name: string, mock: MockOpenAI | string, extra: Record<string, unknown> = {}) => ({
  name,
  kind: 'openai',
  base_url: typeof mock === 'string' ? mock : mock.url,
  api_key: '${KEY_A1}',
  models: ['*'],
  ...extra,
});

export async function postChat(gw: TestGateway, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

export const chat = (model: string, extra: Record<string, unknown> = {}) => ({ model, messages: [{ role: 'user', content: 'hi there' }], ...extra });

/** Requests a mock got for a path (its URL without the query). */
export const requestsTo = (mock: MockOpenAI, path: string) => mock.requests.filter((r) => r.url.split('?')[0] === path);
