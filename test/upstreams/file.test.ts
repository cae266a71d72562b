/**
 * The upstreams file (PROXYGPT_UPSTREAMS): the example parses into what it says, JSON
 * works as well as YAML, and every mistake is refused with a message naming the entry and field
 * (through loadConfig: prefixed by the variable), never quoting a key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config.js';
import { secretsOf } from '../../src/app.js';
import { parseUpstreamsText, UpstreamsFileError } from '../../src/upstreams/file.js';
import { tempDir } from '../helpers.js';

const KEY_A = 'sk-file-key-a-0123456789abcdef';
const KEY_B = 'sk-file-key-b-0123456789abcdef';
const AZURE = 'azure-file-key-0123456789abcdef';
const ENV = { OPENAI_KEY_A: KEY_A, OPENAI_KEY_B: KEY_B, AZURE_KEY: AZURE };
const PROXY = 'pgpt-file-test-proxy-key-000000';

const EXAMPLE = `
upstreams:
  - name: openai-a
    kind: openai
    base_url: https://api.openai.com/v1
    api_key: [\${OPENAI_KEY_A}, \${OPENAI_KEY_B}]   # one key or several
    models: ["gpt-4o*", "gpt-4.1*"]
  - name: azure
    kind: azure
    base_url: https://myres.openai.azure.com
    api_key: \${AZURE_KEY}
    api_version: "2024-10-21"
    models: { "gpt-4o": "my-gpt4o-deployment" }      # model -> deployment
  - name: local
    kind: openai-compatible
    base_url: http://127.0.0.1:8001/v1
    models: ["llama-*"]
    prices: { "*": { input: 0, output: 0 } }          # USD per million tokens
`;

/** The error message for `text` (with ENV), or fails the test when it parses. */
function problem(text: string, env: Record<string, string> = ENV): string {
  try {
    parseUpstreamsText(text, env, 'upstreams.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(UpstreamsFileError);
    return (err as Error).message;
  }
  throw new Error('the file was accepted');
}

/** One upstream entry (YAML lines under `- `) in an otherwise valid file. */
const one = (lines: string) => `upstreams:\n  - ${lines.trim().split('\n').join('\n    ')}\n`;

describe('the upstreams file', () => {
  it("parses the issue's example: kinds, keys from the environment, globs, deployments, prices, defaults", () => {
    const config = parseUpstreamsText(EXAMPLE, ENV, 'upstreams.yaml');
    expect(config.file).toBe('upstreams.yaml');
    expect(config.attempts).toBe(3);
    const [a, azure, local] = config.upstreams;
    expect(a).toMatchObject({ name: 'openai-a', kind: 'openai', weight: 1, timeoutMs: null, apiVersion: null, prices: null });
    expect(a!.baseUrl.href).toBe('https://api.openai.com/v1');
    expect(a!.keys).toEqual([
      { secret: KEY_A, weight: 1, source: 'OPENAI_KEY_A' },
      { secret: KEY_B, weight: 1, source: 'OPENAI_KEY_B' },
    ]);
    expect(a!.models).toEqual([
      { pattern: 'gpt-4o*', model: null, deployment: null },
      { pattern: 'gpt-4.1*', model: null, deployment: null },
    ]);
    expect(a!.breaker).toEqual({ failures: 5, cooldownMs: 30_000, sitOutRateLimits: true });
    expect(azure).toMatchObject({ kind: 'azure', apiVersion: '2024-10-21', keys: [{ secret: AZURE, source: 'AZURE_KEY' }] });
    expect(azure!.baseUrl.href).toBe('https://myres.openai.azure.com/');
    expect(azure!.models).toEqual([{ pattern: 'gpt-4o', model: null, deployment: 'my-gpt4o-deployment' }]);
    expect(local).toMatchObject({ kind: 'openai-compatible', keys: [], prices: { '*': { input: 0, cachedInput: 0, output: 0 } } });
  });

  it('takes JSON, renames, key weights, timeouts, retry and breaker settings (file-wide and per upstream)', () => {
    const json = JSON.stringify({
      retry: { attempts: 2 },
      breaker: { failures: 3, cooldown_ms: 1000 },
      upstreams: [
        { name: 'vllm', kind: 'openai-compatible', base_url: 'http://10.0.0.5:8000/v1/', api_key: [{ key: '${OPENAI_KEY_A}', weight: 3 }, '${OPENAI_KEY_B}'], models: { 'llama-3': 'meta-llama/Llama-3-8B', 'qwen*': null }, weight: 2.5, timeout_ms: 5000, breaker: { failures: 0 } },
        { name: 'az', kind: 'azure', base_url: 'https://r.openai.azure.com', api_key: '${AZURE_KEY}', api_version: '2024-10-21', models: { 'gpt-4o': { deployment: 'dep', model: 'gpt-4o-2024-08-06' }, 'gpt-4o-mini': null } },
      ],
    });
    const config = parseUpstreamsText(json, ENV, 'u.json');
    expect(config.attempts).toBe(2);
    const [vllm, az] = config.upstreams;
    expect(vllm!.baseUrl.href).toBe('http://10.0.0.5:8000/v1');
    expect(vllm!.keys.map((k) => k.weight)).toEqual([3, 1]);
    expect(vllm!.models).toEqual([
      { pattern: 'llama-3', model: 'meta-llama/Llama-3-8B', deployment: null },
      { pattern: 'qwen*', model: null, deployment: null },
    ]);
    expect(vllm).toMatchObject({ weight: 2.5, timeoutMs: 5000, breaker: { failures: 0, cooldownMs: 1000, sitOutRateLimits: true } });
    expect(az!.models).toEqual([
      { pattern: 'gpt-4o', model: 'gpt-4o-2024-08-06', deployment: 'dep' },
      { pattern: 'gpt-4o-mini', model: null, deployment: null },
    ]);
    expect(az!.breaker).toEqual({ failures: 3, cooldownMs: 1000, sitOutRateLimits: true });
  });

  it('an openai upstream without base_url goes to api.openai.com', () => {
    const config = parseUpstreamsText(one('name: o\napi_key: ${OPENAI_KEY_A}\nmodels: ["*"]'), ENV, 'f');
    expect(config.upstreams[0]!.baseUrl.href).toBe('https://api.openai.com/v1');
  });

  it('refuses a key written in the file, without quoting it', () => {
    const literal = 'sk-literal-key-in-the-file-000000';
    const message = problem(one(`name: o\napi_key: ${literal}\nmodels: ["*"]`));
    expect(message).toBe('upstreams[0].api_key: must be "${ENV_NAME}", a reference to an environment variable holding the key; a key written in the file is refused');
    expect(problem(one(`name: o\napi_key: ["\${OPENAI_KEY_A}", "${literal}"]\nmodels: ["*"]`))).toMatch(/^upstreams\[0\]\.api_key\[1\]: must be "\$\{ENV_NAME\}"/);
    expect(problem(one(`name: o\napi_key: "prefix-\${OPENAI_KEY_A}"\nmodels: ["*"]`))).toMatch(/^upstreams\[0\]\.api_key: must be/);
  });

  it('names an environment variable that is not set (or empty)', () => {
    expect(problem(one('name: o\napi_key: ${NOT_SET_ANYWHERE}\nmodels: ["*"]'))).toBe('upstreams[0].api_key: the environment variable NOT_SET_ANYWHERE is not set');
    expect(problem(one('name: o\napi_key: [${OPENAI_KEY_A}, ${EMPTY_ONE}]\nmodels: ["*"]'), { ...ENV, EMPTY_ONE: ' "" ' })).toBe(
      'upstreams[0].api_key[1]: the environment variable EMPTY_ONE is not set',
    );
    expect(problem(one('name: o\napi_key: [{key: ${GONE}, weight: 2}]\nmodels: ["*"]'))).toBe('upstreams[0].api_key[0].key: the environment variable GONE is not set');
  });

  it('names the entry and field of each mistake', () => {
    const second = (lines: string) => `${one('name: ok\napi_key: ${OPENAI_KEY_A}\nmodels: ["*"]')}  - ${lines.trim().split('\n').join('\n    ')}\n`;
    const cases: [string, string][] = [
      [second('name: b\nkind: openai-compatible\nbase_url: ftp://x\nmodels: ["*"]'), 'upstreams[1].base_url: must be an http(s) URL (got "ftp://x")'],
      [second('name: b\nkind: openai-compatible\nbase_url: not a url\nmodels: ["*"]'), 'upstreams[1].base_url: is not a valid URL (got "not a url")'],
      [second('name: b\nkind: openai-compatible\nbase_url: http://u:p@h/v1\nmodels: ["*"]'), 'upstreams[1].base_url: must not contain credentials (give the key as api_key)'],
      [second('name: b\nkind: openai-compatible\nbase_url: http://h/v1?x=1\nmodels: ["*"]'), 'upstreams[1].base_url: must not have a query or fragment'],
      [second('name: b\nkind: openai-compatible\nmodels: ["*"]'), 'upstreams[1].base_url: is required for kind openai-compatible'],
      [second('name: b\nkind: anthropic\nmodels: ["*"]'), 'upstreams[1].kind: must be "openai", "azure" or "openai-compatible"'],
      [second('name: b\nmodels: ["*"]'), 'upstreams[1].api_key: is required for kind openai'],
      [second('name: b\napi_key: ${OPENAI_KEY_B}\nmodles: ["*"]\nmodels: ["*"]'), 'upstreams[1]: unknown field "modles"'],
      [second('name: b\napi_key: ${OPENAI_KEY_B}'), 'upstreams[1].models: must be a list of model names or globs, or a map of model name (or glob) to its upstream name'],
      [second('name: b\napi_key: ${OPENAI_KEY_B}\nmodels: []'), 'upstreams[1].models: must list at least one model'],
      [second('name: b\napi_key: ${OPENAI_KEY_B}\nmodels: ["a", ""]'), 'upstreams[1].models[1]: must be a model name or glob, not empty'],
      [second('name: b\napi_key: ${OPENAI_KEY_B}\nmodels: 5'), 'upstreams[1].models: must be a list of model names or globs, or a map of model name (or glob) to its upstream name'],
      [second('name: b\napi_key: ${OPENAI_KEY_B}\nmodels: {"gpt-4o": {deployment: d}}'), 'upstreams[1].models["gpt-4o"].deployment: is only for kind azure'],
      [second('name: b\napi_key: ${OPENAI_KEY_B}\nmodels: {"gpt-4o": 7}'), 'upstreams[1].models["gpt-4o"]: must be a model name (a deployment for azure), null, or {model, deployment}'],
      [second('name: b\nkind: azure\nbase_url: https://r.openai.azure.com\napi_key: ${AZURE_KEY}\nmodels: ["gpt-4o"]'), 'upstreams[1].api_version: is required for kind azure (e.g. "2024-10-21")'],
      [second('name: b\napi_key: ${OPENAI_KEY_B}\napi_version: "2024-10-21"\nmodels: ["*"]'), 'upstreams[1].api_version: is only for kind azure'],
      [second('name: ok\napi_key: ${OPENAI_KEY_B}\nmodels: ["*"]'), 'upstreams[1].name: "ok" is already the name of upstreams[0]'],
      [second('name: "bad name"\napi_key: ${OPENAI_KEY_B}\nmodels: ["*"]'), 'upstreams[1].name: must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit'],
      [second('api_key: ${OPENAI_KEY_B}\nmodels: ["*"]'), 'upstreams[1].name: must be text'],
      [second('name: b\napi_key: ${OPENAI_KEY_B}\nmodels: ["*"]\nweight: 0'), 'upstreams[1].weight: must be above 0'],
      [second('name: b\napi_key: ${OPENAI_KEY_B}\nmodels: ["*"]\ntimeout_ms: 1.5'), 'upstreams[1].timeout_ms: must be a whole number'],
      [second('name: b\napi_key: ${OPENAI_KEY_B}\nmodels: ["*"]\nprices: {"x": {input: -1, output: 0}}'), 'upstreams[1].prices.x.input: must not be negative'],
      [second('name: b\napi_key: ${OPENAI_KEY_B}\nmodels: ["*"]\nprices: {"x": {input: 1}}'), 'upstreams[1].prices.x.output: must be a number (USD per million tokens)'],
      [second('name: b\napi_key: [${OPENAI_KEY_B}, ${OPENAI_KEY_B}]\nmodels: ["*"]'), 'upstreams[1].api_key[1]: OPENAI_KEY_B holds the same key as another entry of this upstream'],
      [second('name: b\napi_key: ${OPENAI_KEY_B}\nmodels: ["*"]\nbreaker: {failures: -1}'), 'upstreams[1].breaker.failures: must be at least 0'],
      [`retry: {attempts: 11}\n${one('name: o\napi_key: ${OPENAI_KEY_A}\nmodels: ["*"]')}`, 'retry.attempts: must be at most 10'],
      ['upstreams: []\n', 'upstreams: must list at least one upstream'],
      ['{}\n', 'upstreams: must be a list of upstreams'],
      [`upstream: []\n`, 'the file: unknown field "upstream"'],
    ];
    for (const [text, expected] of cases) expect(problem(text), text).toBe(expected);
  });

  it('a file that is not YAML is named with its line, never its content', () => {
    const literal = 'sk-secret-on-a-broken-line-0000';
    const message = problem(`upstreams:\n  - name: o\n    api_key: "${literal}\n    models: [*]\n`);
    expect(message).toMatch(/^upstreams\.yaml is not valid YAML or JSON: .*line \d+/);
    expect(message).not.toContain(literal);
    expect(problem('')).toBe('upstreams.yaml is empty: it must list upstreams');
    expect(problem('upstreams:\n  - name: a\n    name: b\n')).toMatch(/^upstreams\.yaml is not valid YAML or JSON: Map keys must be unique/);
  });
});

describe('PROXYGPT_UPSTREAMS in loadConfig', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const fileWith = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('with the file, OPENAI_API_KEY is not required and the file is the whole truth', () => {
    const path = fileWith('ok.yaml', EXAMPLE);
    const { config, warnings } = loadConfig({ ...ENV, PROXYGPT_UPSTREAMS: path, PROXYGPT_API_KEY: PROXY, OPENAI_BASE_URL: 'http://ignored.example/v1' });
    expect(config.upstreams.file).toBe(path);
    expect(config.upstreams.upstreams.map((u) => u.name)).toEqual(['openai-a', 'azure', 'local']);
    expect(config.openaiApiKey).toBe('');
    expect(warnings).toEqual(['OPENAI_BASE_URL is ignored: PROXYGPT_UPSTREAMS names the upstreams']);
    // A key the file references by the name OPENAI_API_KEY is used, not ignored.
    const own = fileWith('own.yaml', one('name: o\napi_key: ${OPENAI_API_KEY}\nmodels: ["*"]'));
    expect(loadConfig({ OPENAI_API_KEY: KEY_A, PROXYGPT_UPSTREAMS: own, PROXYGPT_API_KEY: PROXY }).warnings).toEqual([]);
  });

  it('errors name PROXYGPT_UPSTREAMS, then the entry and field', () => {
    const path = fileWith('bad.yaml', `${one('name: a\napi_key: ${OPENAI_KEY_A}\nmodels: ["*"]')}  - name: b\n    kind: openai-compatible\n    base_url: nowhere\n    models: ["*"]\n`);
    let error: unknown;
    try {
      loadConfig({ ...ENV, PROXYGPT_UPSTREAMS: path, PROXYGPT_API_KEY: PROXY });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe('PROXYGPT_UPSTREAMS');
    expect((error as ConfigError).message).toBe('PROXYGPT_UPSTREAMS: upstreams[1].base_url: is not a valid URL (got "nowhere")');
    expect(() => loadConfig({ ...ENV, PROXYGPT_UPSTREAMS: join(dir, 'missing.yaml'), PROXYGPT_API_KEY: PROXY })).toThrow(`PROXYGPT_UPSTREAMS: cannot read ${join(dir, 'missing.yaml')} (ENOENT)`);
  });

  it('every key of every upstream is a secret to the redactor', () => {
    const path = fileWith('secrets.yaml', EXAMPLE);
    const { config } = loadConfig({ ...ENV, PROXYGPT_UPSTREAMS: path, PROXYGPT_API_KEY: PROXY });
    expect(secretsOf(config)).toEqual([KEY_A, KEY_B, AZURE, PROXY]);
  });

  it('a proxy key equal to an upstream key is refused', () => {
    const path = fileWith('same.yaml', EXAMPLE);
    expect(() => loadConfig({ ...ENV, PROXYGPT_UPSTREAMS: path, PROXYGPT_API_KEYS: `${PROXY},${AZURE}` })).toThrow('PROXYGPT_API_KEYS: a proxy key must not equal an upstream key');
  });

  it('without the file: the one upstream of OPENAI_API_KEY / OPENAI_BASE_URL, every model, no failover, no breaker', () => {
    const { config } = loadConfig({ OPENAI_API_KEY: KEY_A, OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1/', PROXYGPT_API_KEY: PROXY });
    expect(config.upstreams.file).toBeNull();
    expect(config.upstreams.attempts).toBe(1);
    expect(config.upstreams.upstreams).toHaveLength(1);
    expect(config.upstreams.upstreams[0]).toMatchObject({ name: 'default', kind: 'openai', keys: [{ secret: KEY_A }], models: [{ pattern: '*' }], breaker: { failures: 0, sitOutRateLimits: false } });
    expect(config.upstreams.upstreams[0]!.baseUrl.href).toBe('http://127.0.0.1:11434/v1');
    expect(() => loadConfig({ PROXYGPT_API_KEY: PROXY })).toThrow(/^OPENAI_API_KEY: is required/);
  });
});
