/**
 * A pass-through for 2xx bodies the gateway does not read (audio, files, text): masks the
 * configured secrets on the way, also one cut across two chunks (see SecretScrubber), keeping
 * the body's length, so a declared Content-Length stays right.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { SecretScrubber } from '../redact.js';

export class ScrubStream extends Transform {
  constructor(private readonly scrubber: SecretScrubber) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const out = this.scrubber.write(chunk);
    done(null, out.length > 0 ? out : undefined);
  }

  override _flush(done: TransformCallback): void {
    const rest = this.scrubber.end();
    done(null, rest.length > 0 ? rest : undefined);
  }
}
