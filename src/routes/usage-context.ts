/**
 * Per-request usage context: what the request path learned about a call (who, which model,
 * streamed or not, and once metered what it cost), read by the onResponse hook that records usage
 * and writes the access log line.
 */
import type { Settlement } from '../gateway.js';

declare module 'fastify' {
  interface FastifyRequest {
    usage: UsageContext | null;
  }
}

export interface UsageContext {
  principal: string;
  model: string | null;
  stream: boolean;
  /** Resolves once the call is metered and settled (after the last byte of a stream). */
  done: Promise<void> | null;
  settlement: (Settlement & { estimated: boolean }) | null;
}

export function usageContext(principal: string, model: string | null, stream: boolean): UsageContext {
  return { principal, model, stream, done: null, settlement: null };
}
