/**
 * The last step of the request path: once a proxied call is over (its response finished, or its
 * client went away), wait for it to be metered and settled, then write its usage record and one
 * access-log line. Calls whose client left early are recorded with status 499.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { UsageRecord } from '../store/store.js';
import type { UsageRecorder } from '../store/recorder.js';
import '../routes/usage-context.js';

async function recordCall(request: FastifyRequest, reply: FastifyReply, recorder: UsageRecorder, clock: () => number): Promise<void> {
  const usage = request.usage;
  if (usage === null) return;
  const status = reply.raw.writableFinished ? reply.statusCode : 499;
  const durationMs = Math.round(reply.elapsedTime);
  // A finished call is being settled already (usage.done). A client that left early also aborts
  // the upstream call; the route learns of it from the same 'close' event and only then starts
  // settling: let it get there first.
  if (usage.done === null) await new Promise((resolve) => setImmediate(resolve));
  if (usage.done !== null) await usage.done;
  const path = (request.raw.url ?? '/').split('?')[0]!;
  const settlement = usage.settlement;
  const record: UsageRecord = {
    ts: clock(),
    requestId: request.id,
    principal: usage.principal,
    method: request.method,
    path,
    model: usage.model,
    status,
    durationMs,
    stream: usage.stream,
    promptTokens: settlement?.usage.promptTokens ?? 0,
    completionTokens: settlement?.usage.completionTokens ?? 0,
    costMicroUsd: settlement?.costMicroUsd ?? 0,
    estimated: settlement?.estimated ?? false,
  };
  recorder.record(record);
  request.log.info(
    { method: record.method, path, status, ms: durationMs, key: record.principal, model: record.model, tokens: record.promptTokens + record.completionTokens },
    'proxied',
  );
}

export function installCallRecording(app: FastifyInstance, recorder: UsageRecorder, clock: () => number): void {
  app.addHook('onRequest', (request, reply, done) => {
    // 'close' follows 'finish' for complete responses and also fires when the client leaves early.
    reply.raw.once('close', () => {
      recordCall(request, reply, recorder, clock).catch((err: unknown) => request.log.error({ err }, 'recording usage failed'));
    });
    done();
  });
}
