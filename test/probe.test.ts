import { it } from 'vitest';
import { request } from 'node:http';
import net from 'node:net';
import { startGateway, authHeaders, PROXY_KEY } from './helpers.js';

function raw(url: string, port: number, lines: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(lines));
    let out = '';
    s.on('data', (d) => (out += d.toString()));
    s.on('close', () => resolve(out));
    s.on('error', (e) => resolve('ERR ' + e.message + out));
    setTimeout(() => s.end(), 1000);
  });
}

it('probe', async () => {
  const gw = await startGateway({ env: { PROXYGPT_MAX_BODY_BYTES: '1024' } });
  const port = Number(new URL(gw.url).port);
  for (const p of ['/v1/../ratelimit', '/v1/%2e%2e/ratelimit', '/v1/%252e%252e/x', '/v1\\..\\ratelimit', '/v1/%00', '/v1/%zz', '/%zz', '/v1/a\0b', '/ratelimit?x=%zz', '/v1/chat/%63ompletions']) {
    const r = await raw('', port, `GET ${p} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${PROXY_KEY}\r\nConnection: close\r\n\r\n`);
    console.log(JSON.stringify(p), '=>', JSON.stringify(r.split('\r\n')[0]), JSON.stringify(r.split('\r\n\r\n')[1]));
  }
  const tests: [string, RequestInit][] = [
    ['text', { method: 'POST', headers: { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'text/plain' }, body: 'x' }],
    ['none', { method: 'POST', headers: { authorization: `Bearer ${PROXY_KEY}` }, body: new Uint8Array([120]) }],
    ['empty', { method: 'POST', headers: authHeaders(), body: '' }],
    ['null', { method: 'POST', headers: authHeaders(), body: 'null' }],
    ['big', { method: 'POST', headers: authHeaders(), body: 'x'.repeat(2000) }],
    ['jsonchar', { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/json; charset=latin1' }, body: '{}' }],
    ['jsonplus', { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/vnd.api+json' }, body: '{}' }],
  ];
  for (const [n, init] of tests) {
    const r = await fetch(gw.url + '/v1/chat/completions', init);
    console.log(n, r.status, await r.text());
  }
  for (const q of ['?temperature=0.5', '?temperature=abc', '']) {
    const r = await fetch(gw.url + '/api/openai/completions/gpt3' + q, { method: 'POST', headers: authHeaders(), body: '[{"role":"user","content":"hi"}]' });
    console.log('legacy', q, r.status, await r.text(), gw.mock.requests.at(-1)?.body);
  }
  await gw.close();
  console.log(gw.logs.join(''));
});
