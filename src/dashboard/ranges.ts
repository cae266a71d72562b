/**
 * The dashboard's time ranges (last hour, 24 h, 7 days, 30 days): for each, which rollups it
 * reads (per minute or per hour) and the step its series are drawn in, and the window of one
 * request, aligned to whole steps (UTC) so that consecutive reads line up.
 */
import type { RollupGranularity } from '../contract.js';
import { invalidRequest } from '../errors.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

export const RANGE_NAMES = ['1h', '24h', '7d', '30d'] as const;
export type RangeName = (typeof RANGE_NAMES)[number];
export const DEFAULT_RANGE: RangeName = '24h';

interface RangeSpec {
  lengthMs: number;
  granularity: RollupGranularity;
  /** One point of a series: a whole number of rollup rows (60, 144, 168 and 120 points). */
  stepMs: number;
}

const RANGES: Record<RangeName, RangeSpec> = {
  '1h': { lengthMs: HOUR_MS, granularity: 'minute', stepMs: MINUTE_MS },
  '24h': { lengthMs: DAY_MS, granularity: 'minute', stepMs: 10 * MINUTE_MS },
  '7d': { lengthMs: 7 * DAY_MS, granularity: 'hour', stepMs: HOUR_MS },
  '30d': { lengthMs: 30 * DAY_MS, granularity: 'hour', stepMs: 6 * HOUR_MS },
};

export interface RangeWindow {
  name: RangeName;
  granularity: RollupGranularity;
  stepMs: number;
  /** First step's start (inclusive). */
  sinceMs: number;
  /** Last step's end (exclusive): the end of the step that holds `now`. */
  untilMs: number;
  /** How many steps: lengthMs / stepMs. */
  steps: number;
}

/** `?range=`: one of RANGE_NAMES (default 24h); anything else is a 400. */
export function parseRange(value: unknown): RangeName {
  if (value === undefined || value === '') return DEFAULT_RANGE;
  if (typeof value === 'string' && (RANGE_NAMES as readonly string[]).includes(value)) return value as RangeName;
  throw invalidRequest(`range must be one of ${RANGE_NAMES.join(', ')}.`, 'range');
}

/** The window of `name` ending with the step that holds `now`. */
export function rangeWindow(name: RangeName, now: number): RangeWindow {
  const spec = RANGES[name];
  const untilMs = Math.floor(now / spec.stepMs) * spec.stepMs + spec.stepMs;
  return { name, granularity: spec.granularity, stepMs: spec.stepMs, sinceMs: untilMs - spec.lengthMs, untilMs, steps: spec.lengthMs / spec.stepMs };
}
