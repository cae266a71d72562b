/**
 * The one proxy-key check, as an onRequest hook built from options: every route that takes a
 * proxy key (/v1, the legacy route, /ratelimit) gets its hook from `requireProxyKey`. It runs
 * before the body is read (strangers cannot make the gateway parse 10 MB), authenticates the
 * key (401), sets `request.principal`, and checks the endpoint and client IP the key may use
 * (403): the request's own endpoint, a fixed one the route stands for, or only the IP.
 */
import type { FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { Authenticator } from '../auth/authenticator.js';
import type { Access } from '../policy/access.js';
import { pathOf } from '../call/inspect.js';
import './request-state.js';

export interface RequireProxyKeyOptions {
  authenticator: Authenticator;
  access: Access;
  /**
   * Which endpoint the key must be allowed: `request`, the method and path requested (default);
   * a fixed `{ method, path }` (a route that stands for an upstream endpoint); or `none`, only the
   * client IP is checked (a route of the gateway's own, such as /ratelimit).
   */
  endpoint?: 'request' | 'none' | { method: string; path: string };
}

/**
 * The request's Authorization as sent: its value, or every value when the header came more than
 * once. Node keeps only the first copy in `headers`; another reader (a proxy in front) may take
 * the last, so a repeated credential must be refused, not resolved.
 */
export function authorizationOf(raw: IncomingMessage): string | string[] | undefined {
  const headers = raw.rawHeaders;
  let values: string[] | null = null;
  let first: string | undefined;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.length !== 13 || name.toLowerCase() !== 'authorization') continue;
    if (first === undefined) first = headers[i + 1]!;
    else (values ??= [first]).push(headers[i + 1]!);
  }
  return values ?? first;
}

export type ProxyKeyHook = (request: FastifyRequest) => Promise<void>;

export function requireProxyKey(options: RequireProxyKeyOptions): ProxyKeyHook {
  const { authenticator, access, endpoint = 'request' } = options;
  if (endpoint === 'none') {
    return async (request) => {
      request.principal = await authenticator.authenticate(authorizationOf(request.raw));
      access.checkIp(request.principal, request.ip);
    };
  }
  if (endpoint === 'request') {
    return async (request) => {
      request.principal = await authenticator.authenticate(authorizationOf(request.raw));
      access.checkEndpoint(request.principal, request.method, pathOf(request.raw.url ?? '/'), request.ip);
    };
  }
  const { method, path } = endpoint;
  return async (request) => {
    request.principal = await authenticator.authenticate(authorizationOf(request.raw));
    access.checkEndpoint(request.principal, method, path, request.ip);
  };
}
