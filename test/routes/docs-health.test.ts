/**
 * Health and documentation routes: liveness and readiness, the generated OpenAPI document, and the
 * Swagger UI and ReDoc pages — all without a key, and with every asset served by the gateway itself
 * (no CDN), so the docs work offline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({ env: { PROXYGPT_ALLOWED_ENDPOINTS: 'POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models' } });
});
afterAll(async () => gw.close());

/** The src/href URLs of <script> and <link> tags in an HTML page. */
function assetUrls(html: string): { scripts: string[]; links: string[] } {
  const scripts = [...html.matchAll(/<script\b[^>]*\bsrc\s*=\s*["']([^"']+)["']/gi)].map((m) => m[1]!);
  const links = [...html.matchAll(/<link\b[^>]*\bhref\s*=\s*["']([^"']+)["']/gi)].map((m) => m[1]!);
  return { scripts, links };
}

/** True when `url` (as written in a page at `pageUrl`) points at this gateway. */
function isLocal(url: string, pageUrl: string): boolean {
  if (/^(https?:)?\/\//i.test(url)) return new URL(url, pageUrl).origin === new URL(pageUrl).origin;
  return !/^[a-z][a-z0-9+.-]*:/i.test(url); // no other scheme (data:, javascript:) either
}

describe('health', () => {
  it('GET /healthz answers 200 without a key', async () => {
    const res = await fetch(`${gw.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('GET /readyz answers 200 while the store answers, naming each dependency it asked', async () => {
    const res = await fetch(`${gw.url}/readyz`);
    expect(res.status).toBe(200);
    // The SQLite install's limiter lives in this process: only the store is asked.
    expect(await res.json()).toEqual({ status: 'ok', checks: { store: 'ok' } });
  });

  it('health checks are not proxied and do not count as usage', async () => {
    const before = gw.mock.requests.length;
    for (let i = 0; i < 3; i++) await (await fetch(`${gw.url}/healthz`)).text();
    expect(gw.mock.requests.length).toBe(before);
    expect(gw.logs.some((l) => l.includes('"path":"/healthz"'))).toBe(false);
  });
});

describe('GET /openapi.json', () => {
  let doc: {
    openapi: string;
    info: { title: string; version: string };
    paths: Record<string, Record<string, { responses?: Record<string, unknown>; security?: unknown; parameters?: { in: string; name: string }[] }>>;
    components?: { securitySchemes?: Record<string, { type: string; scheme?: string }> };
  };

  beforeAll(async () => {
    const res = await fetch(`${gw.url}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    doc = (await res.json()) as typeof doc;
  });

  it('is an OpenAPI 3 document', () => {
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(doc.info.title).toBe('ProxyGPT');
    expect(typeof doc.info.version).toBe('string');
    expect(doc.info.version.length).toBeGreaterThan(0);
    expect(typeof doc.paths).toBe('object');
    const methods = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);
    for (const [path, item] of Object.entries(doc.paths)) {
      expect(path.startsWith('/'), path).toBe(true);
      for (const [method, operation] of Object.entries(item)) {
        expect(methods.has(method), `${method} ${path}`).toBe(true);
        expect(Object.keys(operation.responses ?? {}).length, `${method} ${path} has responses`).toBeGreaterThan(0);
        for (const param of operation.parameters ?? []) {
          expect(['query', 'header', 'path', 'cookie']).toContain(param.in);
          if (param.in === 'path') expect(path).toContain(`{${param.name}}`);
        }
      }
    }
  });

  it('lists the documented routes', () => {
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/chat/completions', '/api/openai/completions/gpt3', '/ratelimit', '/healthz', '/readyz']));
    expect(doc.paths['/v1/chat/completions']!.post).toBeDefined();
    expect(doc.paths['/api/openai/completions/gpt3']!.post).toBeDefined();
    expect(doc.paths['/ratelimit']!.get).toBeDefined();
    // Every enabled /v1 endpoint is documented.
    expect(doc.paths['/v1/embeddings']!.post).toBeDefined();
    expect(doc.paths['/v1/models']!.get).toBeDefined();
  });

  it('documents the proxy key as a bearer token on the routes that need it', () => {
    expect(doc.components?.securitySchemes?.proxyKey).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.paths['/v1/chat/completions']!.post!.security).toEqual([{ proxyKey: [] }]);
    expect(doc.paths['/ratelimit']!.get!.security).toEqual([{ proxyKey: [] }]);
    expect(doc.paths['/healthz']!.get!.security).toBeUndefined();
  });

  it('documents the legacy temperature query parameter', () => {
    const params = doc.paths['/api/openai/completions/gpt3']!.post!.parameters ?? [];
    expect(params).toEqual(expect.arrayContaining([expect.objectContaining({ in: 'query', name: 'temperature' })]));
  });

  it('hides internal routes (catch-all, docs assets)', () => {
    const paths = Object.keys(doc.paths);
    expect(paths.some((p) => p.includes('*'))).toBe(false);
    expect(paths.some((p) => p.startsWith('/docs') || p.startsWith('/redoc') || p === '/openapi.json')).toBe(false);
  });
});

describe('Swagger UI at /docs', () => {
  let html: string;
  let pageUrl: string;

  beforeAll(async () => {
    const res = await fetch(`${gw.url}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    pageUrl = res.url;
    html = await res.text();
  });

  it('serves the Swagger UI page', () => {
    expect(html).toContain('swagger-ui');
    expect(assetUrls(html).scripts.some((s) => s.includes('swagger-ui-bundle.js'))).toBe(true);
  });

  it('loads every script and stylesheet from the gateway itself, and each answers', async () => {
    const { scripts, links } = assetUrls(html);
    expect(scripts.length).toBeGreaterThanOrEqual(2);
    for (const url of [...scripts, ...links]) {
      expect(isLocal(url, pageUrl), `${url} is local`).toBe(true);
      const res = await fetch(new URL(url, pageUrl));
      expect(res.status, url).toBe(200);
      expect((await res.arrayBuffer()).byteLength, url).toBeGreaterThan(0);
    }
    for (const url of scripts) {
      const res = await fetch(new URL(url, pageUrl));
      expect(res.headers.get('content-type'), url).toMatch(/javascript/);
      await res.arrayBuffer();
    }
  });

  it('points the UI at the local OpenAPI document', async () => {
    const initializer = assetUrls(html).scripts.find((s) => s.includes('initializer'));
    expect(initializer).toBeDefined();
    const js = await (await fetch(new URL(initializer!, pageUrl))).text();
    expect(js).not.toMatch(/https?:\/\/(?!127\.0\.0\.1|localhost)[a-z0-9.-]+\.[a-z]{2,}\/[^\s'"]*\.(json|ya?ml)/i);
    // And it does not send the document to the online validator.
    expect(js).toMatch(/validatorUrl:\s*null/);
    const spec = await fetch(new URL('/docs/json', pageUrl));
    expect(spec.status).toBe(200);
    expect(((await spec.json()) as { openapi: string }).openapi).toMatch(/^3\./);
  });

  it('sends a content security policy that allows only its own scripts and works over plain http', async () => {
    const res = await fetch(`${gw.url}/docs`);
    await res.text();
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/script-src 'self'\s*;/);
    // `upgrade-insecure-requests` would make browsers fetch the assets over https from a gateway
    // that only speaks http (a LAN address without a TLS proxy): the page would stay blank.
    expect(csp).not.toContain('upgrade-insecure-requests');
  });
});

describe('security headers of the HTML pages', () => {
  for (const page of ['/docs/', '/redoc']) {
    it(`${page}: not sniffed, never framed, scripts from the gateway only, no referrer`, async () => {
      const res = await fetch(`${gw.url}${page}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/html');
      await res.text();
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      const directives = new Map(
        (res.headers.get('content-security-policy') ?? '')
          .split(';')
          .map((d) => d.trim().split(/\s+/))
          .filter((d) => d[0] !== '')
          .map(([name, ...values]) => [name!, values]),
      );
      expect(directives.get('frame-ancestors')).toEqual(["'none'"]);
      expect(directives.get('object-src')).toEqual(["'none'"]);
      const scripts = directives.get('script-src') ?? [];
      expect(scripts[0]).toBe("'self'");
      // Nothing that lets an injected inline script or another origin's script run.
      for (const source of scripts.slice(1)) expect(source, `script-src ${source}`).toMatch(/^'sha256-/);
      for (const [name, values] of directives) {
        for (const value of values) expect(value, `${name} ${value}`).not.toMatch(/^(https?:|\*|'unsafe-eval')/);
      }
    });
  }

  it('every answer, JSON included, says nosniff', async () => {
    for (const path of ['/healthz', '/openapi.json', '/v1/chat/completions', '/no-such-route']) {
      const res = await fetch(`${gw.url}${path}`);
      await res.text();
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
    }
  });
});

describe('ReDoc at /redoc', () => {
  it('serves a page whose script is the local ReDoc bundle, reading /openapi.json', async () => {
    const res = await fetch(`${gw.url}/redoc`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    const html = await res.text();
    const { scripts, links } = assetUrls(html);
    expect(scripts).toEqual(['/redoc/redoc.standalone.js']);
    for (const url of [...scripts, ...links]) expect(isLocal(url, res.url), url).toBe(true);
    expect(html).toMatch(/spec-url=["']\/openapi\.json["']/);
    // The bundle's only third-party request is an image (the Redocly logo): the page forbids it.
    expect(res.headers.get('content-security-policy')).toMatch(/img-src 'self' data:/);
  });

  it('serves /redoc/redoc.standalone.js from the gateway', async () => {
    const res = await fetch(`${gw.url}/redoc/redoc.standalone.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/javascript/);
    const js = await res.text();
    expect(js.length).toBeGreaterThan(100_000);
    expect(js).toContain('Redoc');
    // Served the same on a second request (cached in memory).
    const again = await fetch(`${gw.url}/redoc/redoc.standalone.js`);
    expect((await again.text()).length).toBe(js.length);
  });

  it('needs no key', async () => {
    for (const path of ['/docs', '/redoc', '/openapi.json', '/redoc/redoc.standalone.js']) {
      const res = await fetch(`${gw.url}${path}`);
      expect(res.status, path).toBe(200);
      await res.arrayBuffer();
    }
  });
});
