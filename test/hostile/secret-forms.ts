/**
 * For the secret scan: every form a secret could take in captured text (as it is, percent-encoded,
 * base64 and base64url at each of the three alignments it can have inside a longer encoded text,
 * hex, JSON \u escapes), a search of captured text for any of them, and a recording TCP proxy that
 * keeps every byte a server sends back (status lines, headers, bodies, chunk framing) per
 * connection, whoever the client (fetch, a raw socket, the CLI).
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';

/** The stable middle of base64(prefix + secret) for a prefix of 0, 1 and 2 bytes: what any text that base64-encodes the secret contains. */
function base64Forms(secret: Buffer): string[] {
  const forms: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset, 0x20), secret]).toString('base64');
    // The first group mixes prefix bytes (when there is a prefix); the last may mix in what follows.
    const start = offset === 0 ? 0 : 4;
    const end = (offset + secret.length) % 3 === 0 ? encoded.length : Math.floor((offset + secret.length) / 3) * 4;
    const stable = encoded.slice(start, end);
    forms.push(stable, stable.replaceAll('+', '-').replaceAll('/', '_'));
  }
  return forms;
}

export interface SecretForm {
  secret: string;
  how: string;
  text: string;
}

/** Every form of `secret` to look for. */
export function formsOf(secret: string): SecretForm[] {
  const bytes = Buffer.from(secret, 'utf8');
  const percent = [...bytes].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
  const forms: [string, string][] = [
    ['as it is', secret],
    ['percent-encoded', percent],
    ['percent-encoded (upper case)', percent.toUpperCase()],
    ['URL-encoded', encodeURIComponent(secret)],
    ['hex', bytes.toString('hex')],
    ['JSON \\u escapes', [...secret].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')],
    ...base64Forms(bytes).map((text, i): [string, string] => [`base64${i % 2 === 1 ? 'url' : ''} (alignment ${Math.floor(i / 2)})`, text]),
  ];
  const distinct = new Map<string, string>();
  for (const [how, text] of forms) if (text.length >= 12 && !distinct.has(text)) distinct.set(text, how);
  return [...distinct].map(([text, how]) => ({ secret, how, text }));
}

/** The forms of `secrets` found in `text`, as "secret-prefix… how" (empty: none). */
export function findSecrets(text: string, forms: readonly SecretForm[]): string[] {
  const lower = text.toLowerCase();
  return forms
    .filter((f) => (f.how.startsWith('percent') || f.how === 'hex' ? lower.includes(f.text.toLowerCase()) : text.includes(f.text)))
    .map((f) => `${f.secret.slice(0, 10)}… ${f.how}`);
}

export interface RecordingProxy {
  url: string;
  /** What the server sent back on each connection so far, as Latin-1 text (one character per byte). */
  received(): string[];
  bytes(): number;
  close(): Promise<void>;
}

/** A TCP proxy to `target` (http://host:port) that records everything the server sends back. */
export async function recordingProxy(target: string): Promise<RecordingProxy> {
  const { hostname, port } = new URL(target);
  const connections: Buffer[][] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const received: Buffer[] = [];
    connections.push(received);
    const upstream = net.connect(Number(port), hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    upstream.on('data', (chunk: Buffer) => received.push(chunk));
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received: () => connections.map((chunks) => Buffer.concat(chunks).toString('latin1')),
    bytes: () => connections.reduce((sum, chunks) => sum + chunks.reduce((n, c) => n + c.length, 0), 0),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
