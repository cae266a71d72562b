/**
 * An in-process stand-in for the IPC channel between a cluster worker and the primary, behaving
 * like Node's: every message is copied through JSON at send time (NaN and Infinity become null,
 * undefined properties vanish) and delivered in a later event-loop turn (setImmediate), in order.
 * The worker's end implements PrimaryChannel, the primary's end WorkerChannel. Tests count the
 * messages each way, can hold back delivery to the primary (`pause`/`resume`), and end the channel
 * as a dying primary (`disconnect`) or a dying worker (`exit`) would.
 */
import { EventEmitter } from 'node:events';
import type { PrimaryChannel, WorkerChannel } from '../../src/limits/cluster.js';

export interface IpcPair {
  /** The worker's end (`process` in a cluster worker). */
  worker: PrimaryChannel & { send(message: unknown): boolean };
  /** The primary's end (the cluster `Worker`). */
  primary: WorkerChannel;
  /** Messages accepted by the open channel so far, as delivered (JSON copies). */
  sent: { toPrimary: unknown[]; toWorker: unknown[] };
  /** Sends attempted after the channel closed (Node refuses them). */
  sentAfterClose: number;
  /** Holds messages to the primary back until `resume` (they stay in flight). */
  pause(): void;
  /** Delivers the held messages to the primary, in order, in a later turn. */
  resume(): void;
  /** The primary is gone: the channel closes and the worker's end emits 'disconnect' (next turn). */
  disconnect(): void;
  /** The worker process exits: the channel closes and the primary's end emits 'exit' now. */
  exit(): void;
}

/** One event-loop turn: everything scheduled with setImmediate before it has run. */
export const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

export function ipcPair(): IpcPair {
  const workerEvents = new EventEmitter();
  const primaryEvents = new EventEmitter();
  let connected = true;
  let paused = false;
  let held: unknown[] = [];

  const deliver = (events: EventEmitter, copy: unknown) => setImmediate(() => events.emit('message', copy));
  const pair: IpcPair = {
    sent: { toPrimary: [], toWorker: [] },
    sentAfterClose: 0,
    worker: {
      send(message: unknown) {
        if (!connected) {
          pair.sentAfterClose++;
          return false;
        }
        const copy: unknown = JSON.parse(JSON.stringify(message));
        pair.sent.toPrimary.push(copy);
        if (paused) held.push(copy);
        else deliver(primaryEvents, copy);
        return true;
      },
      on(event: 'message' | 'disconnect', listener: (message: unknown) => void) {
        workerEvents.on(event, listener);
        return this;
      },
    },
    primary: {
      send(message: unknown) {
        if (!connected) {
          pair.sentAfterClose++;
          return false;
        }
        const copy: unknown = JSON.parse(JSON.stringify(message));
        pair.sent.toWorker.push(copy);
        deliver(workerEvents, copy);
        return true;
      },
      isConnected: () => connected,
      on(event: 'message' | 'exit', listener: (message: unknown) => void) {
        primaryEvents.on(event, listener);
        return this;
      },
    },
    pause() {
      paused = true;
    },
    resume() {
      paused = false;
      for (const copy of held) deliver(primaryEvents, copy);
      held = [];
    },
    disconnect() {
      connected = false;
      setImmediate(() => workerEvents.emit('disconnect'));
    },
    exit() {
      connected = false;
      primaryEvents.emit('exit');
    },
  };
  return pair;
}
