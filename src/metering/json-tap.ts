/**
 * A tap on a JSON response: passes every chunk on unchanged and keeps a copy (up to a cap) so the
 * usage can be read once the body is complete.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { usageFromJson, type TokenUsage } from './usage.js';

const MAX_COPY_BYTES = 8 * 1024 * 1024;

export class JsonTap extends Transform {
  private readonly parts: Buffer[] = [];
  private size = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
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
