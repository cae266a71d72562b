/**
 * Per-request usage context: what the request path learned about a call (who, which model,
 * streamed or not), read by the onResponse hook that records usage and writes the access log line.
 */
declare module 'fastify' {
  interface FastifyRequest {
    usage: UsageContext | null;
  }
}

export interface UsageContext {
  principal: string;
  model: string | null;
  stream: boolean;
}

export {};
