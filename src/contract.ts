/**
 * The contract every backend implements and every caller speaks: the shared nouns of the gateway
 * (stored keys and their policies, usage records, token usage, prices) and the two asynchronous
 * interfaces with several implementations side by side, the Store (SQLite, Postgres) and the
 * Limiter (memory, sqlite, cluster, Redis). Types and one constant (the rollups' latency
 * buckets): this module imports nothing, so no implementation depends on another through it (it
 * ends the store <-> metering import cycle).
 */

// ---------------------------------------------------------------------------------------------
// Metering: token usage and prices.

/**
 * Token usage as upstreams report it, normalised (chat completions and embeddings, the Responses API;
 * see metering/usage.ts for the parsing).
 */
export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  /** Part of promptTokens served from the upstream's prompt cache (cheaper). */
  cachedTokens: number;
  /**
   * Reported counts that were out of range and clamped (`prompt_tokens: too large`, …): names and
   * reasons only, never the values (a text count could carry anything). Absent when all were fine.
   */
  clamped?: string[];
}

/** USD per million tokens. */
export interface ModelPrice {
  input: number;
  cachedInput: number;
  output: number;
}

// ---------------------------------------------------------------------------------------------
// The Store: stored proxy keys (only their SHA-256 hash), usage records, the admin's price
// overrides. Asynchronous everywhere, even where SQLite is not.

/** A stored key's own limits and allowlists; absent or null fields mean "no per-key restriction". */
export interface KeyPolicy {
  requestsPerHour?: number | null;
  requestsPerDay?: number | null;
  tokensPerHour?: number | null;
  tokensPerDay?: number | null;
  /** US dollars per rolling day. */
  usdPerDay?: number | null;
  /** US dollars per calendar month (UTC). */
  usdPerMonth?: number | null;
  /** Calls in flight at once (streams count while open). */
  maxConcurrent?: number | null;
  /** `METHOD /v1/path` entries (a trailing `/*` allows a prefix); within the gateway's own list. */
  endpoints?: string[] | null;
  /** Model names or globs; within the gateway's own list. */
  models?: string[] | null;
  /** Client IPs or CIDR ranges (IPv4 or IPv6). */
  ips?: string[] | null;
}

export interface StoredKey {
  id: string;
  name: string;
  notes: string;
  /** The first characters of the secret, enough to recognise it (`pgpt-AbCd…`). */
  prefix: string;
  createdAt: number;
  updatedAt: number;
  expiresAt: number | null;
  disabled: boolean;
  policy: KeyPolicy;
}

export interface NewKey {
  id: string;
  name: string;
  notes: string;
  hash: string;
  prefix: string;
  expiresAt: number | null;
  policy: KeyPolicy;
  now: number;
}

export interface KeyPatch {
  name?: string;
  notes?: string;
  expiresAt?: number | null;
  disabled?: boolean;
  policy?: KeyPolicy;
}

/** One proxied call, as recorded after it finished. Never holds a key or a message body. */
export interface UsageRecord {
  ts: number;
  requestId: string;
  principal: string;
  method: string;
  path: string;
  model: string | null;
  status: number;
  durationMs: number;
  stream: boolean;
  promptTokens: number;
  completionTokens: number;
  /** Cost in micro-dollars (1e-6 USD). */
  costMicroUsd: number;
  /** true when the tokens were estimated (no usage from the upstream). */
  estimated: boolean;
  /** The upstream whose answer the call got (its name in the upstreams file); null or absent when none answered. */
  upstream?: string | null;
}

export interface UsageTotals {
  requests: number;
  promptTokens: number;
  completionTokens: number;
  usd: number;
  byStatus: Record<string, number>;
}

export interface UsageQuery {
  sinceMs: number;
  untilMs: number;
  principal?: string;
  /** Only the calls this upstream answered. */
  upstream?: string;
}

/**
 * Upper bounds (ms, inclusive) of the latency buckets every rollup row counts durations in; a
 * duration above the last bound falls in one more, open-ended bucket (so a row has
 * LATENCY_BOUNDS_MS.length + 1 counts). Mergeable by adding, like Prometheus histogram buckets;
 * percentiles are read off them (see dashboard code), exact to a bucket.
 */
export const LATENCY_BOUNDS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000] as const;

/** The two rollup resolutions: rows per UTC minute and per UTC hour. */
export type RollupGranularity = 'minute' | 'hour';

/**
 * A call the gateway refused before it was opened because every upstream that serves it is out
 * for now (429 or 503; gateway.ts), for the dashboard's rollups only: never a usage record, never
 * counted toward a limit or in `usage()` totals.
 */
export interface RefusalRecord {
  ts: number;
  principal: string;
  model: string | null;
  status: number;
}

/**
 * A range of rollup buckets: those whose START is in [sinceMs, untilMs), each counted whole. A
 * sinceMs inside a bucket leaves that bucket out (align it down to the bucket to include it); the
 * last bucket started before untilMs is in, with all its calls (also those after untilMs).
 */
export interface RollupQuery {
  sinceMs: number;
  untilMs: number;
  granularity: RollupGranularity;
  /** Only this principal's rows (a key holder's own view). */
  principal?: string;
  /**
   * Steps to sum the range's buckets into (the dashboard's points): a whole multiple of the
   * granularity's bucket (60,000 for minute rows, 3,600,000 for hour rows); the buckets of a step
   * are those with floor(bucket / stepMs) · stepMs equal to its start, so steps are UTC-aligned
   * to multiples of stepMs whatever sinceMs is (a step that starts before sinceMs, or runs past
   * untilMs, holds only the range's buckets). Default: the bucket itself (one row per bucket).
   * Anything else (zero, negative, not an integer, not a multiple) throws a RangeError.
   */
  stepMs?: number;
}

/** Sums of the rollup rows of one group over a query's range. */
export interface RollupSums {
  /** Calls recorded as usage (whatever their status); refusals are not requests. */
  requests: number;
  promptTokens: number;
  completionTokens: number;
  costMicroUsd: number;
  /** Calls answered 429 (upstream or gateway refusal). */
  rateLimited: number;
  /** Calls answered with a status >= 500 (the upstream's, or the gateway's 502/504 for a broken upstream); a client that left (499) is not one. */
  upstreamErrors: number;
  /**
   * Counts per latency bucket (LATENCY_BOUNDS_MS.length + 1 entries) of the calls not answered
   * 429: refusals are not timed, and a 429 (the limiter's, answered at once, or the upstream's)
   * says nothing of how fast calls are served, so it would only pull the percentiles down. (Rows
   * written before this rule count their 429s' durations too; they are kept as they are.)
   */
  latency: number[];
}

/**
 * What the dashboard reads over a range, all from rollups (never a scan of usage records):
 * `buckets` one entry per (step start, principal) that has rows (a step is a bucket unless the
 * query names a stepMs), sorted by ts then principal;
 * `byModel` the range's sums per model (null: calls without a model), sorted by model in byte
 * order, null last. Principals sort in byte order too (as in `usage()`).
 */
export interface RollupResult {
  buckets: Array<RollupSums & { ts: number; principal: string }>;
  byModel: Array<RollupSums & { model: string | null }>;
}

/**
 * Errors: a backend throws the domain errors of store/errors.ts, never its driver's own (a name
 * already used is `KeyNameTaken`, an unreachable database `StoreUnavailable`).
 */
export interface Store {
  /**
   * Brings the schema up to date (idempotent; safe when several processes start at once). The
   * store factory (store/open.ts) calls it before handing the store out.
   */
  migrate(): Promise<void>;

  /** Throws `KeyNameTaken` when another key has the name. */
  createKey(key: NewKey): Promise<StoredKey>;
  /** The key whose secret hashes to `hash`, or null. */
  findKeyByHash(hash: string): Promise<StoredKey | null>;
  /** By id or by name. */
  getKey(idOrName: string): Promise<StoredKey | null>;
  listKeys(): Promise<StoredKey[]>;
  /** Throws `KeyNameTaken` when the patch renames the key to another key's name. */
  updateKey(id: string, patch: KeyPatch, now: number): Promise<StoredKey | null>;
  /** Replaces the secret (rotation). */
  setKeySecret(id: string, hash: string, prefix: string, now: number): Promise<StoredKey | null>;
  deleteKey(id: string): Promise<boolean>;

  /** Writes a batch of usage records in one transaction. */
  recordUsage(records: readonly UsageRecord[]): Promise<void>;
  /** Totals over [sinceMs, untilMs), overall and per principal. */
  usage(query: UsageQuery): Promise<{ total: UsageTotals; byPrincipal: Record<string, UsageTotals> }>;
  /**
   * Rollups: per-minute and per-hour sums by principal, model and status, kept current by
   * `recordUsage` (in the same transaction) and by `recordRefusals`; read by `rollups`.
   */
  recordRefusals(refusals: readonly RefusalRecord[]): Promise<void>;
  /** Sums from the rollup rows of the query's granularity (see RollupQuery for the range). */
  rollups(query: RollupQuery): Promise<RollupResult>;
  /** The last time each principal had a usage record (epoch ms), for the principals that have any. */
  lastUsed(): Promise<Record<string, number>>;
  /**
   * Deletes usage records older than `beforeMs`; returns how many records. Rollup rows go once
   * their whole bucket is before a cutoff (they are never recomputed, so an hour row keeps the
   * calls of records pruned inside it): hour rows before `beforeMs`, minute rows before `beforeMs`
   * or before two days ahead of the newest minute row, whichever is later.
   */
  pruneUsage(beforeMs: number): Promise<number>;

  priceOverrides(): Promise<Record<string, ModelPrice>>;
  /** Sets (or with null removes) the admin's price for a model. */
  setPriceOverride(model: string, price: ModelPrice | null): Promise<void>;

  /** Resolves when the store answers a trivial query (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// The Limiter: exact windowed limits where checking and reserving are one atomic step (see
// limits/limiter.ts for the model and the window arithmetic shared by the implementations).

export type LimitUnit = 'requests' | 'tokens' | 'usd';

export interface LimitRule {
  /** Stable name shown to users, e.g. `hourly` or `key_tokens_per_day`. */
  name: string;
  series: string;
  unit: LimitUnit;
  /** Rolling window length; for calendar-month rules, the month's length (informational). */
  windowMs: number;
  /** true: the window is the current calendar month (UTC) instead of a rolling one. */
  calendarMonth?: boolean;
  limit: number;
}

export interface RuleState {
  name: string;
  unit: LimitUnit;
  limit: number;
  /** Counted plus held (in flight) in the current window, including this request when admitted. */
  used: number;
  remaining: number;
  windowMs: number;
  /**
   * Milliseconds until room grows again: for rolling windows until the oldest counted event leaves;
   * for calendar months until the month ends. 0 when nothing is counted.
   */
  resetMs: number;
}

/** What one request costs in one series, and whether the amount is held (settled later). */
export interface SeriesCost {
  amount: number;
  /**
   * false: counted at once (the original's "every admitted call counts").
   * true: held in flight; `commit` counts the actual amount at commit time, `release` drops it.
   */
  hold: boolean;
}

export interface Reservation {
  id: string;
  /** Held amounts by series, to settle with `commit` or `release`. */
  held: Record<string, number>;
}

export interface Decision {
  admitted: boolean;
  states: RuleState[];
  /** When refused: the rule that refused and the exact wait until this request would fit. */
  blockedBy?: string;
  /** undefined when refused and no amount of waiting helps (the cost exceeds the limit). */
  retryAfterMs?: number;
  reservation?: Reservation;
}

export interface Limiter {
  /**
   * Atomically checks every rule against the cost of its series and, only if all have room,
   * reserves every cost. Series named in `costs` without a rule are reserved too.
   */
  reserve(rules: readonly LimitRule[], costs: Readonly<Record<string, SeriesCost>>): Promise<Decision>;
  /**
   * Settles held amounts: each held series counts `actual[series]` (default: the held amount) at
   * the current time. Counted-at-admission series are untouched. Idempotent: a reservation is
   * counted once, however often it is committed.
   *
   * Late too: a hold that expired before its call settled (the call outlived the limiter's hold
   * lifetime, e.g. a long stream) no longer counts toward the windows, but the limiter remembers
   * the reservation (its id and held amounts per series) for EXPIRED_HOLD_MEMORY_MS (a day) after
   * the expiry, at most EXPIRED_HOLDS_KEPT (10,000) per series, the oldest-expired forgotten first
   * (both in limits/limiter.ts), so a late commit still counts `actual[series] ?? held amount` at
   * commit time (never refused, even past a limit). A reservation forgotten, or made by a limiter
   * that has since restarted and keeps holds only in its memory (memory, cluster), counts nothing.
   */
  commit(reservation: Reservation, actual?: Readonly<Record<string, number>>): Promise<void>;
  /** Drops held amounts (of an expired hold: forgets it, so a later commit counts nothing). Idempotent. */
  release(reservation: Reservation): Promise<void>;
  /** Current state of each rule, reserving nothing. */
  peek(rules: readonly LimitRule[]): Promise<RuleState[]>;
  /**
   * Deletes events no window can see any more (older than `horizonMs(series)`) and ends expired
   * holds (remembering them for a late commit, see `commit`), and forgets the expired holds past
   * that memory; returns the number of events and holds removed (forgetting is not counted).
   */
  prune(horizonMs: (series: string) => number): Promise<number>;
  close(): Promise<void>;
}
