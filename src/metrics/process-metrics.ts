/**
 * prom-client's default metrics (CPU, memory, event loop lag, GC, handles, Node version) describe
 * the process, not one gateway in it: they are collected once per process, in a registry of their
 * own that each gateway's registry merges. collectDefaultMetrics starts a GC observer and an
 * event-loop monitor that are never stopped, so it must not run again for every gateway a process
 * builds (tests build many).
 */
import { collectDefaultMetrics, Registry } from 'prom-client';

let shared: Registry | null = null;

export function processMetrics(): Registry {
  if (shared === null) {
    shared = new Registry();
    collectDefaultMetrics({ register: shared });
  }
  return shared;
}
