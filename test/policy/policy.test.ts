/**
 * The access policy on its own (src/policy/policy.ts): exact endpoint rules match one method and
 * one path only; a prefix rule `/v1/models/*` matches the paths below `/v1/models/` and neither
 * its look-alike siblings (`/v1/modelsX`) nor `/v1/models` itself (the listing needs its own rule,
 * as in the README's example); no list allows every endpoint. Models match by case-sensitive glob;
 * a body that names no model passes, one whose model is not a string is refused. Refusals are 403
 * in OpenAI's error shape, naming what was refused and for whom.
 */
import { describe, expect, it } from 'vitest';
import { Policy } from '../../src/policy/policy.js';
import { ApiError } from '../../src/errors.js';
import type { EndpointRule } from '../../src/config.js';

const rules: EndpointRule[] = [
  { method: 'POST', path: '/v1/chat/completions' },
  { method: 'GET', path: '/v1/models/*' },
];

/** What `fn` throws (status, type, code, message), or null when it does not throw. */
function refusal(fn: () => void): { status: number; type: string; code: string | null; message: string } | null {
  try {
    fn();
    return null;
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    const e = err as ApiError;
    return { status: e.statusCode, type: e.type, code: e.code, message: e.message };
  }
}

describe('endpoints', () => {
  const policy = new Policy(rules, null);

  it('an exact rule matches its method and path only', () => {
    expect(policy.endpointAllowed('POST', '/v1/chat/completions')).toBe(true);
    for (const path of ['/v1/chat/completions/', '/v1/chat/completion', '/v1/chat/completionsX', '/v1/chat/completions/x', '/v1/chat', '/v1/chat/', '/v1', '/v1/chat/Completions']) {
      expect(policy.endpointAllowed('POST', path), path).toBe(false);
    }
    for (const method of ['GET', 'PUT', 'PATCH', 'DELETE', 'post']) expect(policy.endpointAllowed(method, '/v1/chat/completions'), method).toBe(false);
  });

  it('a prefix rule matches the paths below its prefix, not its siblings and not the bare prefix', () => {
    for (const path of ['/v1/models/a', '/v1/models/ab', '/v1/models/gpt-4o', '/v1/models/ft:gpt-4o-mini:org:custom:abc123', '/v1/models/meta-llama/Llama-3-8B']) {
      expect(policy.endpointAllowed('GET', path), path).toBe(true);
    }
    for (const path of ['/v1/models', '/v1/models/', '/v1/modelsX', '/v1/models-evil', '/v1/modelsfoo/bar', '/v1/model/gpt-4o', '/v1/Models/gpt-4o', '/v1/x/v1/models/gpt-4o']) {
      expect(policy.endpointAllowed('GET', path), path).toBe(false);
    }
    for (const method of ['POST', 'DELETE']) expect(policy.endpointAllowed(method, '/v1/models/gpt-4o'), method).toBe(false);
  });

  it('covers a key rule only when it allows everything the rule does', () => {
    const gateway = new Policy([{ method: 'POST', path: '/v1/chat/completions' }, { method: 'GET', path: '/v1/models/*' }, { method: 'GET', path: '/v1/files' }], null);
    expect(gateway.coversRule({ method: 'POST', path: '/v1/chat/completions' })).toBe(true);
    expect(gateway.coversRule({ method: 'GET', path: '/v1/models/*' })).toBe(true);
    expect(gateway.coversRule({ method: 'GET', path: '/v1/models/gpt-4o/*' })).toBe(true);
    expect(gateway.coversRule({ method: 'GET', path: '/v1/models/gpt-4o' })).toBe(true);
    const outside: EndpointRule[] = [
      { method: 'GET', path: '/v1/models' },
      { method: 'GET', path: '/v1/*' },
      { method: 'GET', path: '/v1/files/*' },
      { method: 'POST', path: '/v1/models/*' },
      { method: 'GET', path: '/v1/modelsX/*' },
      { method: 'POST', path: '/v1/chat/completions/*' },
    ];
    for (const rule of outside) {
      expect(gateway.coversRule(rule), `${rule.method} ${rule.path}`).toBe(false);
    }
    expect(new Policy(null, null).coversRule({ method: 'GET', path: '/v1/*' })).toBe(true);
  });

  it('matches when any one of several rules does', () => {
    const both = new Policy([{ method: 'GET', path: '/v1/models' }, ...rules], null);
    expect(both.endpointAllowed('GET', '/v1/models')).toBe(true);
    expect(both.endpointAllowed('GET', '/v1/models/gpt-4o')).toBe(true);
    expect(both.endpointAllowed('POST', '/v1/chat/completions')).toBe(true);
    expect(both.endpointAllowed('GET', '/v1/modelsX')).toBe(false);
  });

  it('no list allows every endpoint; an empty list none', () => {
    const open = new Policy(null, null);
    for (const [method, path] of [['GET', '/v1/anything'], ['DELETE', '/v1/files/file-1'], ['POST', '/v1/chat/completions']] as const) {
      expect(open.endpointAllowed(method, path)).toBe(true);
      expect(refusal(() => open.checkEndpoint(method, path))).toBeNull();
    }
    expect(new Policy([], null).endpointAllowed('POST', '/v1/chat/completions')).toBe(false);
  });

  it('checkEndpoint refuses with 403 endpoint_not_allowed, naming the endpoint and the scope', () => {
    expect(refusal(() => policy.checkEndpoint('POST', '/v1/chat/completions'))).toBeNull();
    expect(refusal(() => policy.checkEndpoint('GET', '/v1/models/gpt-4o'))).toBeNull();
    const gateway = refusal(() => policy.checkEndpoint('GET', '/v1/modelsX'));
    expect(gateway).toMatchObject({ status: 403, type: 'permission_error', code: 'endpoint_not_allowed' });
    expect(gateway!.message).toContain('GET /v1/modelsX');
    expect(gateway!.message).toContain('this gateway');
    const key = refusal(() => new Policy(rules, null, 'this key').checkEndpoint('DELETE', '/v1/models/gpt-4o'));
    expect(key).toMatchObject({ status: 403, code: 'endpoint_not_allowed' });
    expect(key!.message).toContain('DELETE /v1/models/gpt-4o');
    expect(key!.message).toContain('this key');
    expect(key!.message).not.toContain('this gateway');
  });
});

describe('models', () => {
  const policy = new Policy(null, ['gpt-4o*', 'whisper-1']);

  it('globs and exact names match, case-sensitively', () => {
    for (const model of ['gpt-4o', 'gpt-4o-mini', 'gpt-4o-2024-08-06', 'whisper-1']) expect(policy.modelAllowed(model), model).toBe(true);
    for (const model of ['GPT-4O', 'gpt-4', 'x-gpt-4o', 'whisper-1x', 'whisper-2', 'Whisper-1', '']) expect(policy.modelAllowed(model), model).toBe(false);
  });

  it('a `*` entry matches names with dots, including a leading one', () => {
    const star = new Policy(null, ['*']);
    for (const model of ['gpt-4o', '.hidden', 'gpt-3.5-turbo']) expect(star.modelAllowed(model), model).toBe(true);
  });

  it('no list allows every model, whatever its type', () => {
    const open = new Policy(null, null);
    expect(open.modelAllowed('anything-at-all')).toBe(true);
    for (const model of ['anything', 42, null, undefined, ['gpt-4o']]) expect(refusal(() => open.checkModel(model)), String(model)).toBeNull();
  });

  it('checkModel: an allowed or absent model passes; another, or one that is not a string, is 403 model_not_allowed', () => {
    for (const model of ['gpt-4o-mini', 'whisper-1', undefined]) expect(refusal(() => policy.checkModel(model)), String(model)).toBeNull();
    for (const model of ['gpt-4', 'GPT-4O', 42, null, ['gpt-4o'], { model: 'gpt-4o' }, true]) {
      expect(refusal(() => policy.checkModel(model)), JSON.stringify(model)).toMatchObject({ status: 403, type: 'permission_error', code: 'model_not_allowed' });
    }
    const message = refusal(() => policy.checkModel('gpt-4'))!.message;
    expect(message).toContain('"gpt-4"');
    expect(message).toContain('this gateway');
    expect(refusal(() => new Policy(null, ['gpt-4o*'], 'this key').checkModel('o3'))!.message).toContain('this key');
  });
});
