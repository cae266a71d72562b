/**
 * The last step of the request path: once a proxied call's response is over (finished, or its
 * client went away), wait until the call is settled (`call.settled`; at once when it is already),
 * then write its usage record and one access-log line. Calls whose client left early are
 * recorded with status 499. Requests that never became a call (refused by auth or policy, bad
 * input) are not recorded. An observer (the metrics) is told of each record.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CallSettlement, ProxyCall } from '../call/proxy-call.js';
import type { UsageRecord } from '../contract.js';
import type { UsageRecorder } from '../store/recorder.js';
import './request-state.js';

/** Told of every recorded call, with what its record holds (the metrics). */
export interface CallObserver {
  callEnded(request: FastifyRequest, call: ProxyCall, status: number, elapsedMs: number, settlement: CallSettlement | null): void;
}

/** The levels at which the access log's `info` lines are written. */
const WRITES_INFO = new Set(['trace', 'debug', 'info']);

function writeRecord(
  request: FastifyRequest,
  call: ProxyCall,
  status: number,
  elapsedMs: number,
  settlement: CallSettlement | null,
  recorder: UsageRecorder,
  clock: () => number,
  observer: CallObserver | null,
): void {
  const durationMs = Math.round(elapsedMs);
  const path = (request.raw.url ?? '/').split('?')[0]!;
  const record: UsageRecord = {
    ts: clock(),
    requestId: request.id,
    principal: call.principal.id,
    method: request.method,
    path,
    model: call.body.model,
    status,
    durationMs,
    stream: call.body.stream,
    promptTokens: settlement?.usage.promptTokens ?? 0,
    completionTokens: settlement?.usage.completionTokens ?? 0,
    costMicroUsd: settlement?.costMicroUsd ?? 0,
    estimated: settlement?.estimated ?? false,
    upstream: call.upstream,
  };
  recorder.record(record);
  // The line's fields are built only when it is written (LOG_LEVEL=warn skips it: no object per call).
  if (WRITES_INFO.has(request.log.level)) {
    request.log.info(
      { method: record.method, path, status, ms: durationMs, key: record.principal, model: record.model, upstream: record.upstream, tokens: record.promptTokens + record.completionTokens },
      'proxied',
    );
  }
  observer?.callEnded(request, call, status, elapsedMs, settlement);
}

function recordCall(request: FastifyRequest, reply: FastifyReply, recorder: UsageRecorder, clock: () => number, observer: CallObserver | null): void {
  const call = request.call;
  if (call === null) return;
  const status = reply.raw.writableFinished ? reply.statusCode : 499;
  const elapsedMs = reply.elapsedTime;
  if (call.isSettled) return writeRecord(request, call, status, elapsedMs, call.settlement, recorder, clock, observer);
  // A stream, or a client that left before the answer: the call settles once its body is over.
  call.settled
    .then((settlement) => writeRecord(request, call, status, elapsedMs, settlement, recorder, clock, observer))
    .catch((err: unknown) => request.log.error({ err }, 'recording usage failed'));
}

export function installCallRecording(app: FastifyInstance, recorder: UsageRecorder, clock: () => number, observer: CallObserver | null = null): void {
  app.addHook('onRequest', (request, reply, done) => {
    // 'close' follows 'finish' for complete responses and also fires when the client leaves early;
    // it comes once per response (`on`: no `once` wrapper kept while a stream is open).
    reply.raw.on('close', () => {
      try {
        recordCall(request, reply, recorder, clock, observer);
      } catch (err) {
        request.log.error({ err }, 'recording usage failed');
      }
    });
    done();
  });
}
