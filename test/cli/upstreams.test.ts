/**
 * `proxygpt upstreams list` and `check` (in this process): the file validated as the server does
 * (same messages, exit 1), listed with keys by their last 4 characters only, and each key of each
 * upstream probed with GET /models: ok for mocks that answer (Azure's path and api-key included),
 * FAILED with the reason for a refused upstream and a 401, exit 1 then. No key in any output.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startMockOpenAI, type MockOpenAI } from '../fixtures/mock-openai.js';
import { tempDir } from '../helpers.js';
import { KEYS, refusedUrl } from '../upstreams/helpers.js';
import { runCli, runJson } from './cli.js';

let dir: string;
let good: string;
let openai: MockOpenAI;
let azure: MockOpenAI;
let env: Record<string, string>;

beforeAll(async () => {
  dir = tempDir();
  [openai, azure] = await Promise.all([startMockOpenAI(), startMockOpenAI()]);
  good = join(dir, 'upstreams.yaml');
  writeFileSync(
    good,
    `retry: { attempts: 2 }
upstreams:
  - name: openai-a
    base_url: ${openai.url}
    api_key: [\${KEY_A1}, \${KEY_A2}]
    models: ["gpt-4o*"]
  - name: azure
    kind: azure
    base_url: http://127.0.0.1:${azure.port}
    api_key: \${AZURE_KEY}
    api_version: "2024-10-21"
    models: { "gpt-4o": "my-deployment" }
`,
  );
  env = { ...KEYS, PROXYGPT_UPSTREAMS: good };
});
afterAll(async () => {
  await Promise.all([openai.close(), azure.close()]);
  rmSync(dir, { recursive: true, force: true });
});

const noKeys = (text: string) => {
  for (const key of Object.values(KEYS)) expect(text).not.toContain(key);
};

describe('proxygpt upstreams', () => {
  it('list: a table of the upstreams, keys by their last 4 characters and variable', async () => {
    const { code, stdout, stderr } = await runCli(['upstreams', 'list'], { env });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain(`Upstreams from ${good}, at most 2 attempts per call:`);
    expect(stdout).toMatch(/^NAME\s+KIND\s+BASE URL\s+KEYS\s+MODELS\s+WEIGHT$/m);
    expect(stdout).toContain(`…${KEYS.KEY_A1.slice(-4)} (KEY_A1), …${KEYS.KEY_A2.slice(-4)} (KEY_A2)`);
    expect(stdout).toContain('gpt-4o → my-deployment');
    noKeys(stdout);
    const json = await runJson<{ upstreams: { name: string; keys: { key: string; source: string }[] }[] }>(['upstreams', 'list'], { env });
    expect(json.upstreams.map((u) => u.name)).toEqual(['openai-a', 'azure']);
    expect(json.upstreams[1]!.keys).toEqual([{ key: `…${KEYS.AZURE_KEY.slice(-4)}`, source: 'AZURE_KEY', weight: 1 }]);
    noKeys(JSON.stringify(json));
  });

  it('list: a bad file is the server’s message, exit 1; --file wins over the variable', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'upstreams:\n  - name: x\n    api_key: sk-literal-key-in-the-file-0000\n    models: ["*"]\n');
    const viaVariable = await runCli(['upstreams', 'list'], { env: { ...env, PROXYGPT_UPSTREAMS: bad } });
    expect(viaVariable.code).toBe(1);
    expect(viaVariable.stderr).toMatch(/^proxygpt: PROXYGPT_UPSTREAMS: upstreams\[0\]\.api_key: must be "\$\{ENV_NAME\}"/);
    expect(viaVariable.stderr).not.toContain('sk-literal');
    const viaFlag = await runCli(['upstreams', 'list', '--file', bad], { env });
    expect(viaFlag.code).toBe(1);
    expect(viaFlag.stderr).toMatch(/^proxygpt: --file: upstreams\[0\]\.api_key/);
    const none = await runCli(['upstreams', 'list'], { env: {} });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no upstreams');
  });

  it('check: every key of every upstream answers its model list (Azure with its path and api-key)', async () => {
    const { code, stdout } = await runCli(['upstreams', 'check'], { env });
    expect(code).toBe(0);
    expect(stdout).toMatch(/^UPSTREAM\s+KEY\s+RESULT\s+STATUS\s+MODELS\s+MS\s+ERROR$/m);
    expect(stdout.match(/\bok\b/g)).toHaveLength(3);
    expect(azure.requests.map((r) => [r.url, r.headers['api-key']])).toEqual([['/openai/models?api-version=2024-10-21', KEYS.AZURE_KEY]]);
    expect(openai.requests.map((r) => r.headers.authorization).sort()).toEqual([`Bearer ${KEYS.KEY_A1}`, `Bearer ${KEYS.KEY_A2}`]);
    noKeys(stdout);
  });

  it('check: a refused upstream and a rejected key are FAILED with the reason; exit 1', async () => {
    const file = join(dir, 'failing.json');
    writeFileSync(
      file,
      JSON.stringify({
        upstreams: [
          { name: 'gone', base_url: await refusedUrl(), api_key: '${KEY_B}', models: ['*'] },
          { name: 'rejecting', base_url: openai.url, api_key: '${KEY_A1}', models: ['*'] },
        ],
      }),
    );
    openai.forced = { 'x-mock-status': '401' };
    try {
      const rows = await runCli(['upstreams', 'check', '--file', file, '--json'], { env });
      expect(rows.code).toBe(1);
      expect(rows.stderr).toBe('proxygpt: 2 of 2 upstream keys failed the check\n');
      const parsed = JSON.parse(rows.stdout) as { upstream: string; status: number | null; error: string }[];
      expect(parsed.map((r) => [r.upstream, r.status, r.error])).toEqual([
        ['gone', null, 'ECONNREFUSED'],
        ['rejecting', 401, 'HTTP 401'],
      ]);
      noKeys(rows.stdout);
    } finally {
      openai.forced = {};
    }
  });
});
