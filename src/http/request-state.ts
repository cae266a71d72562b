/**
 * What the request path attaches to a Fastify request: the authenticated principal (set by the
 * proxy-key hook) and the call (set once a proxied call passes its policy; the recorder reads
 * it). Declared once on the app when it is built, so no route depends on another route having
 * been registered first.
 */
import type { FastifyInstance } from 'fastify';
import type { Principal } from '../auth/authenticator.js';
import type { ProxyCall } from '../call/proxy-call.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling, once a proxy key was accepted; null on routes that take none. */
    principal: Principal | null;
    /** The proxied call this request became; null until it passed its policy, or never. */
    call: ProxyCall | null;
  }
}

export function declareRequestState(app: FastifyInstance): void {
  app.decorateRequest('principal', null);
  app.decorateRequest('call', null);
}
