/**
 * JSON schemas of the dashboard's API (/dashboard/api/*), for /docs and for the answers'
 * serialisation: exactly the fields listed here are sent.
 */
import { RANGE_NAMES } from './ranges.js';

const nullableNumber = { type: 'number', nullable: true };
const nullableString = { type: 'string', nullable: true };

const percentiles = {
  type: 'object',
  description: 'Latency percentiles in ms: the upper bound of the bucket the percentile falls in (buckets 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000 ms; past the last reads as 120000); calls answered 429 are not timed; null without timed calls',
  properties: { p50: nullableNumber, p95: nullableNumber, p99: nullableNumber },
};

const sums = {
  requests: { type: 'integer', description: 'Proxied calls (those refused by a limit of the gateway included; those refused because no upstream could take them count only as 429s or upstream errors)' },
  prompt_tokens: { type: 'integer' },
  completion_tokens: { type: 'integer' },
  total_tokens: { type: 'integer' },
  usd: { type: 'number', description: 'Cost in US dollars' },
  rate_limited: { type: 'integer', description: 'Calls answered 429 (a limit of the gateway, or the upstream)' },
  upstream_errors: { type: 'integer', description: 'Calls answered with a 5xx (the upstream, or the gateway for a broken upstream)' },
  latency_ms: percentiles,
};

const numbers = { type: 'array', items: { type: 'number' } };
const nullableNumbers = { type: 'array', items: nullableNumber };

export const rangeQuery = {
  type: 'object',
  properties: { range: { type: 'string', enum: [...RANGE_NAMES], default: '24h', description: 'last hour, 24 hours, 7 days or 30 days' } },
};

export const overviewSchema = {
  type: 'object',
  properties: {
    range: { type: 'string' },
    since: { type: 'string', format: 'date-time' },
    until: { type: 'string', format: 'date-time' },
    granularity: { type: 'string', enum: ['minute', 'hour'], description: 'Which rollups were read' },
    step_seconds: { type: 'integer', description: 'One point of each series: 60 (1h), 600 (24h), 3600 (7d), 21600 (30d)' },
    timestamps: { ...numbers, description: 'Start of each step, epoch seconds' },
    total: {
      type: 'object',
      properties: {
        ...sums,
        series: {
          type: 'object',
          description: 'One value per timestamp',
          properties: {
            requests: numbers,
            tokens: numbers,
            usd: numbers,
            rate_limited: numbers,
            upstream_errors: numbers,
            latency_p50_ms: nullableNumbers,
            latency_p95_ms: nullableNumbers,
            latency_p99_ms: nullableNumbers,
          },
        },
      },
    },
    by_key: {
      type: 'array',
      description: 'Keys with calls in the range, most calls first (a key holder: their own only)',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          name: { type: 'string' },
          ...sums,
          series: { type: 'object', properties: { requests: numbers, tokens: numbers, usd: numbers } },
        },
      },
    },
    by_model: {
      type: 'array',
      description: 'Sums per model as the clients named it (null: calls without one), most calls first',
      items: { type: 'object', properties: { model: nullableString, ...sums } },
    },
  },
};

const limit = {
  type: 'object',
  properties: {
    name: { type: 'string', description: 'requests_per_hour, requests_per_day, tokens_per_hour, tokens_per_day, usd_per_day, usd_per_month, concurrent; the gateway\'s: hourly, daily, concurrent' },
    unit: { type: 'string', enum: ['requests', 'tokens', 'usd'] },
    limit: { type: 'number' },
    used: { type: 'number', description: 'Counted and in flight in the current window' },
    remaining: { type: 'number' },
    reset_seconds: { type: 'integer', description: 'Seconds until room grows again' },
  },
};

export const keyRowSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    notes: { type: 'string', description: 'Admin view only' },
    prefix: { ...nullableString, description: 'First characters of a stored key; null for an environment key' },
    source: { type: 'string', enum: ['stored', 'env'] },
    status: { type: 'string', enum: ['active', 'disabled', 'expired'] },
    disabled: { type: 'boolean' },
    created_at: { ...nullableString, format: 'date-time' },
    expires_at: { ...nullableString, format: 'date-time' },
    last_used: { ...nullableString, format: 'date-time', description: 'Time of the key\'s last recorded call' },
    limits: { type: 'array', items: limit, description: 'The key\'s own limits now' },
  },
};

export const keysSchema = {
  type: 'object',
  properties: {
    object: { type: 'string', enum: ['list'] },
    data: { type: 'array', items: keyRowSchema, description: 'Admin: every key; a key holder: their own only' },
    gateway_limits: { type: 'array', items: limit, description: 'The gateway\'s own limits, one count shared by every key' },
  },
};

export const sessionSchema = {
  type: 'object',
  properties: {
    role: { type: 'string', enum: ['admin', 'key'] },
    key: {
      type: 'object',
      nullable: true,
      description: 'The signed-in key (null for the admin)',
      properties: { id: { type: 'string' }, name: { type: 'string' }, source: { type: 'string', enum: ['stored', 'env'] } },
    },
  },
};

export const keyIdParams = {
  type: 'object',
  properties: { id: { type: 'string', description: 'Key id (or name)' } },
  required: ['id'],
};
