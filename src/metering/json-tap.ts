/**
 * A tap on a JSON response: passes every chunk on (with the configured secrets masked, also one
 * cut across two chunks: see SecretScrubber; the length stays) and keeps a copy (up to a cap) so
 * the usage can be read once the body is complete.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { SecretScrubber } from '../redact.js';
import type { TokenUsage } from '../contract.js';
import { usageFromJson } from './usage.js';

const MAX_COPY_BYTES = 8 * 1024 * 1024;

export class JsonTap extends Transform {
  private readonly parts: Buffer[] = [];
  private size = 0;

  constructor(private readonly scrubber: SecretScrubber | null = null) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.pass(this.scrubber === null ? chunk : this.scrubber.write(chunk), done);
  }

  override _flush(done: TransformCallback): void {
    if (this.scrubber === null) return done();
    this.pass(this.scrubber.end(), done);
  }

  private pass(chunk: Buffer, done: TransformCallback): void {
    if (chunk.length === 0) return done();
    if (this.size <= MAX_COPY_BYTES) {
      this.parts.push(chunk);
      this.size += chunk.length;
    }
    done(null, chunk);
  }

  /** The usage of the complete body, or null (no usage, not JSON, or too large to keep). */
  usage(): TokenUsage | null {
    if (this.size > MAX_COPY_BYTES || this.size === 0) return null;
    try {
      return usageFromJson(JSON.parse(Buffer.concat(this.parts, this.size).toString('utf8')));
    } catch {
      return null;
    }
  }

  /** The assistant text of a chat completion body, for estimating usage when none is reported. */
  completionText(): string {
    try {
      const body = JSON.parse(Buffer.concat(this.parts, this.size).toString('utf8')) as { choices?: { message?: { content?: unknown } }[] };
      return (body.choices ?? []).map((c) => (typeof c.message?.content === 'string' ? c.message.content : '')).join('');
    } catch {
      return '';
    }
  }
}
