/**
 * Postgres driver errors → the store's domain errors (errors.ts). A unique violation on the key
 * name becomes `KeyNameTaken`; a lost, refused or timed-out connection becomes `StoreUnavailable`
 * (the usage recorder queues records and retries on that one only); anything else passes as is,
 * except a raw unique violation, which is re-thrown without the driver's shape.
 */
import { KeyNameTaken, StoreUnavailable } from './errors.js';

/** The name given to the UNIQUE constraint on api_keys.name in the first migration. */
export const KEY_NAME_CONSTRAINT = 'api_keys_name_unique';

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
]);

/** SQLSTATEs that mean "the server is not there for us right now", not "this statement is wrong". */
function isUnavailableState(code: string): boolean {
  return (
    code.startsWith('08') || // connection exception
    code === '57P01' || // admin_shutdown
    code === '57P02' || // crash_shutdown
    code === '57P03' || // cannot_connect_now (starting up, recovery)
    code === '53300' // too_many_connections
  );
}

/** Messages pg itself (not the server) gives for a connection that is gone or never came. */
const DRIVER_CONNECTION_MESSAGE =
  /connection terminated|connection timeout|timeout exceeded when trying to connect|not queryable|query read timeout|connection (?:is )?closed|cannot use a pool after calling end/i;

interface DriverError {
  code?: unknown;
  constraint?: unknown;
  message?: unknown;
  errors?: unknown;
}

export function isConnectionError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as DriverError;
  if (typeof e.code === 'string' && (NETWORK_CODES.has(e.code) || isUnavailableState(e.code))) return true;
  // Node's happy-eyeballs connect reports an AggregateError of one error per address tried.
  if (Array.isArray(e.errors) && e.errors.length > 0 && e.errors.every(isConnectionError)) return true;
  return typeof e.message === 'string' && DRIVER_CONNECTION_MESSAGE.test(e.message);
}

/** A driver error in words (an AggregateError of connect attempts lists each one). */
export function describeError(err: unknown): string {
  if (err instanceof StoreUnavailable && err.cause !== undefined) return describeError(err.cause);
  const e = (typeof err === 'object' && err !== null ? err : {}) as DriverError;
  if (err instanceof Error && err.message !== '') return err.message;
  if (Array.isArray(e.errors) && e.errors.length > 0) return [...new Set(e.errors.map(describeError))].join('; ');
  if (typeof e.code === 'string') return e.code;
  return String(err);
}

/** What a failed store call throws instead of the driver's error. `keyName` is the name being written, if any. */
export function storeError(err: unknown, keyName?: string): Error {
  if (err instanceof KeyNameTaken || err instanceof StoreUnavailable) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as DriverError;
  if (e.code === '23505') {
    if (e.constraint === KEY_NAME_CONSTRAINT && keyName !== undefined) return new KeyNameTaken(keyName);
    return new Error(`the store refused a duplicate value (${String(e.constraint ?? 'unique constraint')})`, { cause: err });
  }
  if (isConnectionError(err)) return new StoreUnavailable(`Postgres is not reachable: ${describeError(err)}`, { cause: err });
  return err instanceof Error ? err : new Error(describeError(err), { cause: err });
}
