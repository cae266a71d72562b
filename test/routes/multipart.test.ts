/**
 * Multipart uploads (audio transcriptions, image edits, files) through a real gateway: an allowed
 * model passes and the upstream receives the very same bytes under the very same Content-Type
 * (boundary included); the model form field is checked against the gateway's model allowlist and
 * a stored key's own, and a refused, malformed or non-text model, or a body that does not parse as
 * multipart, is answered by the gateway with nothing sent upstream. Clients: fetch with FormData
 * and the official openai SDK.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI, { toFile } from 'openai';
import { PROXY_KEY, startGateway, UPSTREAM_KEY, type TestGateway } from '../helpers.js';
import { ADMIN_KEY, createKey } from '../keys/helpers.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({
    env: {
      PROXYGPT_ADMIN_KEY: ADMIN_KEY,
      LOG_LEVEL: 'warn',
      PROXYGPT_ALLOWED_ENDPOINTS: 'POST /v1/chat/completions, POST /v1/audio/transcriptions, POST /v1/images/edits, POST /v1/files',
      PROXYGPT_ALLOWED_MODELS: 'whisper-1, gpt-4o-transcribe, gpt-image-1, gpt-4o*',
    },
  });
});
afterAll(async () => gw.close());

/** Binary file content: every byte value, CRLFs and text that looks like a multipart boundary. */
const AUDIO = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.from('\r\n--not-the-boundary\r\nContent-Disposition: x\r\n\r\n'), Buffer.from([0xff, 0xfe, 0x00, 0x0d, 0x0a])]);

function form(fields: Record<string, string>, files: Record<string, { bytes: Buffer; name: string; type: string }> = { file: { bytes: AUDIO, name: 'clip.wav', type: 'audio/wav' } }): FormData {
  const f = new FormData();
  for (const [name, value] of Object.entries(fields)) f.append(name, value);
  for (const [name, file] of Object.entries(files)) f.append(name, new Blob([file.bytes], { type: file.type }), file.name);
  return f;
}

/** The exact bytes and Content-Type (with its boundary) fetch would send for `body`. */
async function encoded(body: FormData): Promise<{ bytes: Buffer; contentType: string }> {
  const request = new Request('http://encoder.invalid/', { method: 'POST', body });
  return { bytes: Buffer.from(await request.arrayBuffer()), contentType: request.headers.get('content-type')! };
}

interface Answer {
  status: number;
  json: { error?: { message: string; type: string; code: string | null; param: string | null }; [field: string]: unknown };
}

async function post(path: string, body: Buffer | FormData, headers: Record<string, string> = {}, key = PROXY_KEY): Promise<Answer> {
  const res = await fetch(`${gw.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, ...headers }, body });
  return { status: res.status, json: (await res.json()) as Answer['json'] };
}

/** Runs `fn` and returns how many requests the upstream received meanwhile. */
async function upstreamCalls(fn: () => Promise<void>): Promise<number> {
  gw.mock.reset();
  await fn();
  return gw.mock.requests.length;
}

function expectRefusal(answer: Answer, status: number, code: string, param: string | null = null): void {
  expect(answer.status, JSON.stringify(answer.json)).toBe(status);
  expect(answer.json).toEqual({ error: { message: expect.any(String), type: expect.any(String), code, param } });
}

describe('an allowed multipart upload', () => {
  it('reaches the upstream byte for byte, with the same Content-Type and boundary', async () => {
    const { bytes, contentType } = await encoded(form({ model: 'whisper-1', language: 'en' }));
    gw.mock.reset();
    const answer = await post('/v1/audio/transcriptions', bytes, { 'content-type': contentType });
    expect(answer.status, JSON.stringify(answer.json)).toBe(200);
    expect(answer.json.text).toBe(`Mock transcription of clip.wav (${AUDIO.length} bytes)`);
    expect(gw.mock.requests).toHaveLength(1);
    const seen = gw.mock.requests[0]!;
    expect(seen.url).toBe('/v1/audio/transcriptions');
    expect(seen.headers['content-type']).toBe(contentType);
    expect(contentType).toMatch(/^multipart\/form-data; boundary=/);
    expect(seen.bytes.equals(bytes)).toBe(true);
    expect(Number(seen.headers['content-length'])).toBe(bytes.length);
    expect(seen.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
  });

  it('sent by fetch from a FormData: the upstream reads the same fields and the same file', async () => {
    gw.mock.reset();
    const answer = await post('/v1/images/edits', form({ model: 'gpt-image-1', prompt: 'add a hat' }, { image: { bytes: AUDIO, name: 'cat.png', type: 'image/png' } }));
    expect(answer.status, JSON.stringify(answer.json)).toBe(200);
    expect(answer.json).toMatchObject({ fields: { model: 'gpt-image-1', prompt: 'add a hat' }, files: [{ field: 'image', filename: 'cat.png', type: 'image/png', size: AUDIO.length }] });
    const seen = gw.mock.requests[0]!;
    const received = await new Response(seen.bytes, { headers: { 'content-type': String(seen.headers['content-type']) } }).formData();
    const image = received.get('image') as File;
    expect(Buffer.from(await image.arrayBuffer()).equals(AUDIO)).toBe(true);
  });

  it('an upload that names no model (files) passes the model allowlist', async () => {
    gw.mock.reset();
    const answer = await post('/v1/files', form({ purpose: 'fine-tune' }, { file: { bytes: Buffer.from('{"prompt":"a"}\n'), name: 'train.jsonl', type: 'application/jsonl' } }));
    expect(answer.status, JSON.stringify(answer.json)).toBe(200);
    expect(answer.json).toMatchObject({ fields: { purpose: 'fine-tune' }, files: [{ filename: 'train.jsonl' }] });
    expect(gw.mock.requests).toHaveLength(1);
  });

  it('through the official SDK: audio.transcriptions.create with toFile', async () => {
    const client = new OpenAI({ apiKey: PROXY_KEY, baseURL: `${gw.url}/v1`, maxRetries: 0 });
    gw.mock.reset();
    const transcription = await client.audio.transcriptions.create({ file: await toFile(AUDIO, 'clip.wav', { type: 'audio/wav' }), model: 'whisper-1' });
    expect(transcription.text).toBe(`Mock transcription of clip.wav (${AUDIO.length} bytes)`);
    const seen = gw.mock.requests[0]!;
    expect(String(seen.headers['content-type'])).toMatch(/^multipart\/form-data; boundary=/);
    const received = await new Response(seen.bytes, { headers: { 'content-type': String(seen.headers['content-type']) } }).formData();
    expect(received.get('model')).toBe('whisper-1');
    expect(Buffer.from(await (received.get('file') as File).arrayBuffer()).equals(AUDIO)).toBe(true);

    // A model outside PROXYGPT_ALLOWED_MODELS is refused to the SDK as a permission error.
    const refused = await upstreamCalls(async () => {
      const error = await client.audio.transcriptions.create({ file: await toFile(AUDIO, 'clip.wav'), model: 'whisper-large-v3' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.PermissionDeniedError);
      expect((error as InstanceType<typeof OpenAI.PermissionDeniedError>).code).toBe('model_not_allowed');
    });
    expect(refused).toBe(0);
  });
});

describe('the model form field', () => {
  it('a model outside PROXYGPT_ALLOWED_MODELS is 403 model_not_allowed and nothing goes up', async () => {
    const calls = await upstreamCalls(async () => {
      for (const model of ['whisper-2', 'WHISPER-1', 'dall-e-2', '']) {
        const answer = await post('/v1/audio/transcriptions', form({ model }));
        expectRefusal(answer, 403, 'model_not_allowed');
      }
      // The same body with an allowed model passes: the refusal is about the model alone.
    });
    expect(calls).toBe(0);
    expect((await post('/v1/audio/transcriptions', form({ model: 'whisper-1' }))).status).toBe(200);
  });

  it("a stored key's own model list applies to multipart bodies too", async () => {
    const key = await createKey(gw, { name: 'whisper-only', models: ['whisper-1'] });
    // gpt-4o-transcribe is allowed by the gateway (an environment key may use it) ...
    expect((await post('/v1/audio/transcriptions', form({ model: 'gpt-4o-transcribe' }))).status).toBe(200);
    // ... but not by this key.
    const calls = await upstreamCalls(async () => {
      const answer = await post('/v1/audio/transcriptions', form({ model: 'gpt-4o-transcribe' }), {}, key.key);
      expectRefusal(answer, 403, 'model_not_allowed');
      expect(answer.json.error!.message).toContain('this key');
      expectRefusal(await post('/v1/images/edits', form({ model: 'gpt-image-1', prompt: 'x' }), {}, key.key), 403, 'model_not_allowed');
    });
    expect(calls).toBe(0);
    const allowed = await post('/v1/audio/transcriptions', form({ model: 'whisper-1' }), {}, key.key);
    expect(allowed.status, JSON.stringify(allowed.json)).toBe(200);
  });

  it('a model field sent twice is 400 (param model) and nothing goes up, whichever copy is allowed', async () => {
    // Upstreams differ on which copy of a repeated field they read: the first could pass the
    // allowlist while the upstream serves the second.
    const calls = await upstreamCalls(async () => {
      for (const models of [['whisper-1', 'gpt-evil'], ['gpt-evil', 'whisper-1'], ['whisper-1', 'whisper-1']]) {
        const body = form({});
        for (const model of models) body.append('model', model);
        expectRefusal(await post('/v1/audio/transcriptions', body), 400, 'invalid_request', 'model');
      }
    });
    expect(calls).toBe(0);
  });

  it('a file part named model is 400 (param model) and nothing goes up', async () => {
    const calls = await upstreamCalls(async () => {
      const body = form({}, { model: { bytes: Buffer.from('whisper-1'), name: 'model.txt', type: 'text/plain' }, file: { bytes: AUDIO, name: 'clip.wav', type: 'audio/wav' } });
      expectRefusal(await post('/v1/audio/transcriptions', body), 400, 'invalid_request', 'model');
    });
    expect(calls).toBe(0);
  });
});

describe('a body that does not parse as multipart', () => {
  it.each([
    ['garbage under a boundary', 'multipart/form-data; boundary=----abc', Buffer.from('this is not a multipart body at all')],
    ['no boundary parameter', 'multipart/form-data', Buffer.from('------abc\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n------abc--\r\n')],
    ['another boundary than declared', 'multipart/form-data; boundary=----declared', Buffer.from('------other\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n------other--\r\n')],
    ['cut off before the closing boundary', 'multipart/form-data; boundary=----abc', Buffer.from('------abc\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n------abc\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF')],
  ])('is 400 and nothing goes up: %s', async (_name, contentType, bytes) => {
    const calls = await upstreamCalls(async () => {
      expectRefusal(await post('/v1/audio/transcriptions', bytes, { 'content-type': contentType }), 400, 'invalid_request');
    });
    expect(calls).toBe(0);
  });
});
