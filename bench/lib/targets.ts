/**
 * What the bench sends and where: the direct call to the mock, the gateway (with an environment
 * key, and with a metered stored key), the floor (a bare Node pass-through and nginx, both sending
 * the client's own upstream key on), and the peer (Portkey), each as an origin on 127.0.0.1 plus
 * the headers that target needs and the process that serves it (whose CPU time and memory the
 * bench reads). Every target gets the same request body.
 */

export interface Target {
  name: string;
  origin: string;
  headers: Record<string, string>;
  /** The serving process (the root of its tree: cluster primary, nginx master). */
  pid?: number;
}

export const CHAT_PATH = '/v1/chat/completions';
export const PROXY_KEY = 'pgpt-bench-key-0123456789abcdef';
export const UPSTREAM_KEY = 'sk-bench-upstream-key-000000';
export const ADMIN_KEY = 'pgpt-bench-admin-0123456789abcdef';

export const chatBody = (stream = false) =>
  JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello bench' }], ...(stream ? { stream: true } : {}) });

const json = { 'content-type': 'application/json' };

export function directTarget(mockPort: number, pid?: number): Target {
  return { name: 'direct', origin: `http://127.0.0.1:${mockPort}`, headers: { ...json, authorization: `Bearer ${UPSTREAM_KEY}` }, pid };
}

/** The gateway with the environment key, or (`key`) a stored one. */
export function gatewayTarget(port: number, name = 'gateway', pid?: number, key = PROXY_KEY): Target {
  return { name, origin: `http://127.0.0.1:${port}`, headers: { ...json, authorization: `Bearer ${key}` }, pid };
}

/** A plain pass-through in front of the mock (bare Node, nginx): the client sends the upstream key. */
export function passThroughTarget(name: string, port: number, pid?: number): Target {
  return { name, origin: `http://127.0.0.1:${port}`, headers: { ...json, authorization: `Bearer ${UPSTREAM_KEY}` }, pid };
}

export function peerTarget(port: number, mockPort: number, pid?: number): Target {
  return {
    name: 'portkey',
    pid,
    origin: `http://127.0.0.1:${port}`,
    headers: {
      ...json,
      authorization: `Bearer ${UPSTREAM_KEY}`,
      'x-portkey-provider': 'openai',
      'x-portkey-custom-host': `http://127.0.0.1:${mockPort}/v1`,
      // Portkey forwards only the headers named here; the mock reads its stream shape from them.
      'x-portkey-forward-headers': 'x-mock-chunks,x-mock-chunk-delay-ms,x-mock-delay-ms',
    },
  };
}
