/**
 * What the bench sends and where: the direct call to the mock, the gateway, and the peer (Portkey),
 * each as an origin on 127.0.0.1 plus the headers that target needs. Every target gets the same
 * request body.
 */

export interface Target {
  name: string;
  origin: string;
  headers: Record<string, string>;
}

export const CHAT_PATH = '/v1/chat/completions';
export const PROXY_KEY = 'pgpt-bench-key-0123456789abcdef';
export const UPSTREAM_KEY = 'sk-bench-upstream-key-000000';

export const chatBody = (stream = false) =>
  JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello bench' }], ...(stream ? { stream: true } : {}) });

const json = { 'content-type': 'application/json' };

export function directTarget(mockPort: number): Target {
  return { name: 'direct', origin: `http://127.0.0.1:${mockPort}`, headers: { ...json, authorization: `Bearer ${UPSTREAM_KEY}` } };
}

export function gatewayTarget(port: number, name = 'gateway'): Target {
  return { name, origin: `http://127.0.0.1:${port}`, headers: { ...json, authorization: `Bearer ${PROXY_KEY}` } };
}

export function peerTarget(port: number, mockPort: number): Target {
  return {
    name: 'portkey',
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
