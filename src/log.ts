/**
 * The logger: pino with every secret removed before a line is written. Known secrets (upstream
 * key, proxy keys, admin key) and anything shaped like a bearer token are replaced in messages and
 * in every string of the logged object and of child-logger bindings, and credentials are censored
 * by property name (authorization, cookie, apiKey...) at any depth. This is the Redactor's walk
 * rather than pino's `redact` paths, whose wildcards cost three times a plain log line.
 */
import pino, { type DestinationStream, type Logger } from 'pino';
import type { Redactor } from './redact.js';

export function createLogger(level: string, redactor: Redactor, destination?: DestinationStream): Logger {
  const logger = pino(
    {
      level,
      base: { pid: process.pid },
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
  // Child-logger bindings pass neither through the logMethod hook nor through formatters.bindings
  // (pino resets it for children): redact them on the way in. Children are created with the root
  // as prototype, so every descendant inherits this `child`.
  const child = logger.child;
  logger.child = function redactedChild(this: Logger, bindings, options) {
    // The per-request child (`{ reqId }`, a generated UUID) needs no copy: the hot path skips it.
    const safe = Object.keys(bindings).length === 1 && typeof bindings.reqId === 'string' && !redactor.needed(bindings.reqId);
    return child.call(this, safe ? bindings : (redactor.value(bindings) as typeof bindings), options);
  } as Logger['child'];
  return logger;
}
