/**
 * Reading one environment variable: its value without quotes and spaces, as a list, a boolean,
 * a whole number; every problem a ConfigError naming the variable. Shared by config.ts (the whole
 * Config) and config-backends.ts (the store and the limiter).
 */
import { z } from 'zod';

/** Raised for any invalid setting; `variable` is the environment variable at fault. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

export type Env = Record<string, string | undefined>;

/** The variable's value without surrounding spaces and quotes; undefined when unset or empty (`""` too). */
export function raw(env: Env, name: string): string | undefined {
  const value = env[name];
  if (value === undefined) return undefined;
  const trimmed = unquote(value);
  return trimmed === '' ? undefined : trimmed;
}

/** Strips surrounding spaces and one pair of matching quotes, as `.env` files often carry them. */
export function unquote(value: string): string {
  let v = value.trim();
  if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v[v.length - 1] === v[0]) v = v.slice(1, -1).trim();
  return v.replace(/^["']+|["']+$/g, '').trim();
}

export function list(env: Env, name: string): string[] {
  const value = raw(env, name);
  if (value === undefined) return [];
  return unquote(value)
    .split(',')
    .map(unquote)
    .filter((item) => item !== '');
}

export function parseWith<T>(name: string, schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new ConfigError(name, `${what} (got ${JSON.stringify(value)})`);
  return result.data;
}

export function bool(env: Env, name: string, fallback: boolean): boolean {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  const v = unquote(value).toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(name, `must be true or false (got ${JSON.stringify(value)})`);
}

export const positiveInt = z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER);
export const nonNegativeInt = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export function int(env: Env, name: string, fallback: number, schema: z.ZodType<number> = positiveInt): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!/^-?\d+$/.test(unquote(value))) throw new ConfigError(name, `must be a whole number (got ${JSON.stringify(value)})`);
  return parseWith(name, schema, unquote(value), 'is out of range');
}

/** A positive whole number, or null when unset. */
export function optionalInt(env: Env, name: string): number | null {
  return raw(env, name) === undefined ? null : int(env, name, 0);
}
