/**
 * API documentation generated from the route schemas: /openapi.json, Swagger UI at /docs and
 * ReDoc at /redoc. Every asset is served from node_modules, so the docs work offline (no CDN).
 */
import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

const REDOC_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ProxyGPT API reference</title>
<style>body { margin: 0; padding: 0; }</style>
</head>
<body>
<redoc spec-url="/openapi.json" hide-download-button="false"></redoc>
<script src="/redoc/redoc.standalone.js"></script>
</body>
</html>
`;

/**
 * ReDoc's page: its own bundle only (no inline script), the styles it injects at run time, a
 * worker it starts from a blob for search, nothing from another origin, never in a frame.
 */
const REDOC_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "worker-src 'self' blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Registers the OpenAPI generator; must run before the documented routes are added. */
export async function registerOpenApi(app: FastifyInstance, version: string): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'ProxyGPT',
        version,
        description:
          'Self-hosted gateway that shares one OpenAI API key behind proxy keys, with exact rolling-window limits. ' +
          'Point any OpenAI client at this server (base URL ending in /v1) and use your proxy key as the API key.',
      },
      components: {
        securitySchemes: {
          proxyKey: { type: 'http', scheme: 'bearer', description: 'Your ProxyGPT proxy key' },
          adminKey: { type: 'http', scheme: 'bearer', description: 'The admin key (PROXYGPT_ADMIN_KEY)' },
        },
      },
      tags: [
        { name: 'OpenAI-compatible', description: 'Passed through to the upstream API with the real key' },
        { name: 'Legacy', description: 'Routes of the original ProxyGPT' },
        { name: 'Gateway', description: 'Status of the gateway itself' },
        { name: 'Admin', description: 'Key management, usage and prices (admin key; off when PROXYGPT_ADMIN_KEY is unset)' },
        { name: 'Dashboard', description: 'The JSON behind /dashboard: the admin key sees every key, a proxy key only its own' },
      ],
    },
  });
}

/** Registers the documentation pages; call after all routes are added. */
export async function registerDocsPages(app: FastifyInstance): Promise<void> {
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: true,
    // The default policy says `upgrade-insecure-requests`, which makes browsers fetch the page's own
    // assets over https: on a gateway served over plain http (a LAN address, no TLS proxy) /docs
    // would load blank. Everything is same-origin anyway.
    // The pages are never to be framed (clickjacking), and nothing is sent to the online validator.
    transformStaticCSP: (header: string) =>
      header
        .replace(/\s*upgrade-insecure-requests;?/g, '')
        .replace(/frame-ancestors [^;]*/, "frame-ancestors 'none'")
        .replace(/\s*validator\.swagger\.io/g, '')
        // Styles and fonts from the gateway only, not from any https origin; Swagger UI sets
        // style attributes from its script, so inline styles (never scripts) are allowed.
        .replace(/ https:/g, '')
        .replace(/style-src 'self'/, "style-src 'self' 'unsafe-inline'"),
    uiHooks: {
      onRequest: (_request, reply, done) => {
        reply.header('referrer-policy', 'no-referrer');
        done();
      },
    },
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  // ReDoc's sidebar shows a "by Redocly" logo loaded from cdn.redoc.ly: keep images local so that
  // reading the docs contacts no third party (the logo hides itself when it cannot load).
  app.get('/redoc', { schema: { hide: true } }, async (_request, reply) =>
    reply.type('text/html; charset=utf-8').header('content-security-policy', REDOC_CSP).header('referrer-policy', 'no-referrer').send(REDOC_PAGE),
  );
  let bundle: Buffer | null = null;
  app.get('/redoc/redoc.standalone.js', { schema: { hide: true } }, async (_request, reply) => {
    bundle ??= await readFile(require.resolve('redoc/bundles/redoc.standalone.js'));
    return reply.type('application/javascript; charset=utf-8').header('cache-control', 'public, max-age=86400').send(bundle);
  });
}
