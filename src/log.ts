/**
 * The logger: pino with every secret removed before a line is written. Known secrets (upstream
 * key, proxy keys, admin key) and anything shaped like a bearer token are replaced in messages and
 * in every string of the logged object; authorization headers are censored by path as well.
 */
import pino, { type DestinationStream, type Logger } from 'pino';
import type { Redactor } from './redact.js';

export function createLogger(level: string, redactor: Redactor, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: {
        paths: ['req.headers.authorization', 'headers.authorization', 'req.headers.cookie', '*.apiKey', '*.openaiApiKey'],
        censor: '[REDACTED]',
      },
      hooks: {
        logMethod(args, method) {
          method.apply(
            this,
            args.map((arg) => (typeof arg === 'string' ? redactor.text(arg) : redactor.value(arg))) as Parameters<typeof method>,
          );
        },
      },
    },
    destination,
  );
}
