import type { AuditEventType, KeyStatus, ProviderId } from "../lib/domain.js";
import type { NotificationTarget } from "../lib/notification-events.js";

/**
 * Storage ports. Consumers (vault, api, gateway) depend on these interfaces only; the Kysely
 * implementation serves SQLite and PostgreSQL through one code path.
 *
 * Conventions: timestamps are ISO-8601 UTC strings (`Date#toISOString()`), which sort as text;
 * money is integer nano-USD (`…NanoUsd`); every owner-scoped read and write takes the owner and
 * filters by it in the query itself, so another owner's row behaves exactly like a missing one.
 */

export type ProviderKeyRow = {
  id: string;
  owner: string;
  provider: ProviderId;
  label: string;
  /** `****...abc1`: the only part of the secret ever shown. */
  keyHint: string;
  /** Owner-scoped keyed hash of the secret, for duplicate detection. Never the secret itself. */
  fingerprint: string;
  /** Sealed secret (base64url envelope blob), bound to owner + provider + id. */
  ciphertext: string;
  status: KeyStatus;
  statusDetail: string | null;
  statusChangedAt: string;
  isActive: boolean;
  monthlyLimitNanoUsd: number | null;
  createdAt: string;
  updatedAt: string;
  lastTestedAt: string | null;
  lastUsedAt: string | null;
  totalRequests: number;
  totalTokens: number;
  costNanoUsd: number;
};

export type NewProviderKey = Omit<
  ProviderKeyRow,
  "isActive" | "lastUsedAt" | "totalRequests" | "totalTokens" | "costNanoUsd" | "updatedAt" | "statusChangedAt"
>;

export type StatusChange = {
  status: KeyStatus;
  statusDetail: string | null;
  at: string;
  /** Set when the change comes from a live test. */
  testedAt?: string;
  /**
   * Change only a key whose stored status differs (compare-and-set, one statement): of concurrent
   * identical changes exactly one gets the updated row, the others `undefined`.
   */
  onlyIfDifferent?: boolean;
};

export type KeyPatch = {
  label?: string;
  monthlyLimitNanoUsd?: number | null;
};

export type SecretReplacement = {
  ciphertext: string;
  keyHint: string;
  fingerprint: string;
  status: KeyStatus;
  statusDetail: string | null;
  at: string;
  testedAt: string | null;
};

export type InsertKeyResult = { ok: true } | { ok: false; reason: "duplicate"; existingId: string };

/**
 * Audit events to write with a change: in the change's own transaction, and only when the change
 * found its row (a missing key, a duplicate or a failure writes none). So a change is never
 * committed without its event, nor an event without its change.
 */
export type WithEvents = readonly AuditEvent[];

export type KeyRepo = {
  /**
   * Inserts a key. When `activate` is true it becomes the owner's active key for its provider and
   * every other key of that owner and provider is deactivated, in the same transaction. The
   * unique (owner, fingerprint) index decides duplicates: the loser of a race gets `duplicate`.
   */
  insert(row: NewProviderKey, options: { activate: boolean; at: string }, events?: WithEvents): Promise<InsertKeyResult>;
  findById(owner: string, id: string): Promise<ProviderKeyRow | undefined>;
  findByFingerprint(owner: string, fingerprint: string): Promise<ProviderKeyRow | undefined>;
  /** Newest first. */
  list(owner: string, provider?: ProviderId): Promise<ProviderKeyRow[]>;
  /** The owner's active key for a provider, whatever its status. */
  findActive(owner: string, provider: ProviderId): Promise<ProviderKeyRow | undefined>;
  update(owner: string, id: string, patch: KeyPatch, at: string, events?: WithEvents): Promise<ProviderKeyRow | undefined>;
  /**
   * Makes `id` the only active key of its owner and provider, atomically: concurrent activations
   * of different keys of one owner leave exactly one active (serialised per owner).
   */
  activate(owner: string, id: string, at: string, events?: WithEvents): Promise<ProviderKeyRow | undefined>;
  deactivate(owner: string, id: string, at: string, events?: WithEvents): Promise<ProviderKeyRow | undefined>;
  /** Replaces the secret in place (rotation of the provider key by its owner). */
  replaceSecret(owner: string, id: string, replacement: SecretReplacement, events?: WithEvents): Promise<InsertKeyResult & { row?: ProviderKeyRow }>;
  setStatus(owner: string, id: string, change: StatusChange, events?: WithEvents): Promise<ProviderKeyRow | undefined>;
  /**
   * Deletes the row. On SQLite the ciphertext is also gone from the file and its WAL when this
   * returns (`secure_delete` plus a truncating checkpoint).
   */
  delete(owner: string, id: string, events?: WithEvents): Promise<boolean>;
};

export type DataKeyRow = {
  owner: string;
  /** Master-key id that wrapped this data key. */
  kid: string;
  /** Wrapped data key (base64url envelope blob). */
  wrapped: string;
  createdAt: string;
  updatedAt: string;
};

export type DataKeyRepo = {
  find(owner: string): Promise<DataKeyRow | undefined>;
  /**
   * Inserts unless the owner already has one; returns whichever row is stored (race-safe). Returns
   * `undefined`, inserting nothing, when the owner has no data key but has stored provider keys:
   * those were sealed with a data key that is gone, and a new one would make them unreadable for
   * good (checked in the insert statement itself).
   */
  insertIfAbsent(row: DataKeyRow): Promise<DataKeyRow | undefined>;
  /** Rows not wrapped by `kid`, ordered by owner, after `afterOwner`, at most `limit`. */
  listNotWrappedBy(kid: string, afterOwner: string | undefined, limit: number): Promise<DataKeyRow[]>;
  /** Compare-and-set: replaces the wrapping only if it is still `expectedWrapped`. */
  rewrap(owner: string, expectedWrapped: string, next: { kid: string; wrapped: string; at: string }): Promise<boolean>;
  countByKid(): Promise<Record<string, number>>;
};

export type MasterKeyRow = {
  kid: string;
  /** Keyed hash proving possession of the master key; never the key. */
  verifier: string;
  createdAt: string;
};

export type MasterKeyRepo = {
  list(): Promise<MasterKeyRow[]>;
  /** Ignores a kid that is already recorded. */
  insert(row: MasterKeyRow): Promise<void>;
};

export type AuditEvent = {
  id: string;
  owner: string;
  type: AuditEventType;
  keyId: string | null;
  /** `sub` of the acting user, `operator`, or `system` (gateway-side changes). */
  actor: string;
  ip: string | null;
  userAgent: string | null;
  /** Small JSON object of non-secret facts (provider, label, hint, result, reason). */
  detail: Record<string, unknown>;
  createdAt: string;
};

export type AuditRepo = {
  /**
   * Appends the event. An event of a notification type gets its outbox rows (one per target,
   * `notificationTargetsFor`) in the same transaction, whichever code path audits it.
   */
  insert(event: AuditEvent): Promise<void>;
  /** Newest first; `before` is an event id (ids sort by time). */
  list(owner: string, options: { before?: string; limit: number }): Promise<AuditEvent[]>;
};

export type IdempotencyRecord = {
  owner: string;
  key: string;
  requestHash: string;
  /** null while the first request is still running. */
  statusCode: number | null;
  responseBody: string | null;
  createdAt: string;
};

export type IdempotencyRepo = {
  /** Claims the key for a new request, or returns the record already there. */
  claim(record: Omit<IdempotencyRecord, "statusCode" | "responseBody">): Promise<{ claimed: true } | { claimed: false; existing: IdempotencyRecord }>;
  complete(owner: string, key: string, statusCode: number, responseBody: string): Promise<void>;
  /** Forgets a claim whose request failed, so a retry runs again. */
  release(owner: string, key: string): Promise<void>;
  /** Removes records created before `before`. */
  expire(before: string): Promise<number>;
};

export type UsageSource = "byok" | "platform";

/**
 * How a gateway call ended: `ok` (2xx, complete), `error` (the provider or Keyport answered an
 * error), `partial` (cut off by the provider midway: usage is what was streamed),
 * `client_aborted` (the client went away before its answer was complete), `shutdown_cut` (a
 * stream still running at the shutdown's drain deadline, ended by Keyport: usage is what was
 * streamed), `recovered` (the instance died before it recorded the call: made at the next start
 * from the usage journal, tokens unknown, cost the call's budget reservation or unknown). The
 * tokens of a cut stream that carried no usage are estimates (see `cutStreamUsage`). Records
 * written before `client_aborted` was renamed say `aborted`, which reads as `client_aborted`.
 */
export type UsageStatus = "ok" | "error" | "partial" | "client_aborted" | "shutdown_cut" | "recovered";

/** Unit prices a record was costed at, in nano-USD per million tokens; null when unknown. */
export type UnitPrices = {
  inputNanoUsdPerMTok: number;
  outputNanoUsdPerMTok: number;
  cachedInputNanoUsdPerMTok: number;
  cacheWriteNanoUsdPerMTok: number;
};

/**
 * The prices a budget charges a call whose model has no price in the table: the most expensive
 * list prices Keyport knows of (o1-pro), in nano-USD per million tokens. Unknown is not free, and
 * a cap must hold whatever model name a client sends. Part of the store's vocabulary because a
 * counter that starts from `usage_daily` charges the records without a price at them too.
 */
export const UNPRICED_FALLBACK: UnitPrices = {
  inputNanoUsdPerMTok: 150_000_000_000,
  outputNanoUsdPerMTok: 600_000_000_000,
  cachedInputNanoUsdPerMTok: 150_000_000_000,
  cacheWriteNanoUsdPerMTok: 150_000_000_000,
};

export type UsageRecord = {
  id: string;
  owner: string;
  /** The BYOK key used, or null for the platform key. */
  keyId: string | null;
  source: UsageSource;
  /**
   * The caller's tier (a configured tier name) when the call was made; null for records written
   * before tiers were recorded, or when the caller's tier was not known.
   */
  tier: string | null;
  provider: ProviderId;
  endpoint: string;
  /** The model the provider reported, else the requested one; "" when neither said. */
  model: string;
  inputTokens: number | null;
  outputTokens: number | null;
  cachedInputTokens: number | null;
  cacheWriteTokens: number | null;
  /** null when the model has no price (unknown is not zero). */
  costNanoUsd: number | null;
  prices: UnitPrices | null;
  status: UsageStatus;
  httpStatus: number;
  latencyMs: number;
  /** Time to the first byte sent to the client; null when nothing was sent. */
  ttfbMs: number | null;
  streamed: boolean;
  requestId: string;
  createdAt: string;
};

export type UsageRepo = {
  /**
   * Inserts the records and adds them to their keys' totals (requests, tokens, cost, last used) in
   * one transaction. Re-inserting a record id is ignored, so a retried batch never counts twice.
   */
  insertBatch(records: readonly UsageRecord[]): Promise<void>;
  /** Records of one owner created in [from, to), oldest first (tests, reports). */
  listByOwner(owner: string, range: { from: string; to: string }): Promise<UsageRecord[]>;
  count(): Promise<number>;
  /** Totals per group for one owner in [from, to); the report behind `GET /api/v1/usage`. */
  summarize(owner: string, query: UsageQuery): Promise<UsageGroup[]>;
};

export type UsageGroupBy = "day" | "model" | "key" | "provider";

/** `from` and `to` are ISO-8601 UTC instants as `Date.toISOString()` writes them (the stored form). */
export type UsageQuery = { from: string; to: string; groupBy: UsageGroupBy; source?: UsageSource };

export type UsageGroup = {
  /** The day (`YYYY-MM-DD`), model, key id (`platform` for the platform key) or provider. */
  group: string;
  requests: number;
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
  /** Sum of known costs. */
  costNanoUsd: number;
  /** Requests whose cost is unknown (model without a price): reported, not counted as free. */
  unpricedRequests: number;
};

/** What the operator's usage report groups by (across owners). */
export type OperatorUsageGroupBy = "owner" | "provider" | "model" | "source" | "day" | "tier";

export type OperatorUsageQuery = {
  /** Whole UTC days, `YYYY-MM-DD`: from inclusive, to exclusive. */
  fromDay: string;
  toDay: string;
  groupBy: OperatorUsageGroupBy;
  source?: UsageSource;
  provider?: ProviderId;
  /** Only groups that sort after this one (the last group of the previous page). */
  after?: string;
  limit: number;
};

/**
 * Reads across owners, for the operator API only. Never returns a key's ciphertext or
 * fingerprint to its callers' callers: the API renders rows field by field.
 */
export type OperatorRepo = {
  /**
   * Usage per group, groups in ascending order; `group` is the owner, provider, model, source, day
   * or tier (`"unknown"` for records without one). Every grouping but `tier` reads the daily
   * roll-up; `tier` reads the range's raw records, by id range.
   */
  usage(query: OperatorUsageQuery): Promise<UsageGroup[]>;
  /** The same range and filters summed over every group. */
  usageTotals(query: Omit<OperatorUsageQuery, "groupBy" | "after" | "limit">): Promise<Omit<UsageGroup, "group">>;
  /** Keys whose status is one of `statuses`, every owner, by id (oldest first), after `afterId`. */
  keysWithStatus(statuses: readonly KeyStatus[], options: { afterId?: string; limit: number }): Promise<ProviderKeyRow[]>;
};

/** `skipped`: the target was not set up (no URL, no email, no SMTP) when the delivery came up. */
export type DeliveryState = "pending" | "delivered" | "failed" | "skipped";

/** One notification event's delivery to one target. */
export type NotificationDelivery = {
  eventId: string;
  target: NotificationTarget;
  state: DeliveryState;
  /** Attempts made so far (a skip is not an attempt). */
  attempts: number;
  /** When a pending delivery is due next; null once it is final. */
  nextAttemptAt: string | null;
  lastAttemptAt: string | null;
  /** Why the last attempt failed or the delivery was skipped; never a response body or a secret. */
  lastError: string | null;
  deliveredAt: string | null;
  createdAt: string;
};

/** A due delivery this worker holds a lease on, with its event. */
export type ClaimedDelivery = { delivery: NotificationDelivery; event: AuditEvent; claimToken: string };

/** What became of one attempt. */
export type DeliveryOutcome =
  | { state: "delivered"; at: string }
  /** Failed; tried again at `nextAttemptAt`. */
  | { state: "pending"; at: string; nextAttemptAt: string; error: string }
  /** Failed for the last time. */
  | { state: "failed"; at: string; error: string }
  | { state: "skipped"; at: string; reason: string };

export type NotificationRepo = {
  /**
   * Leases up to `limit` pending deliveries due at `now` whose lease (if any) has run out, until
   * `leaseUntil`, under `claimToken`. One conditional UPDATE: concurrent callers on any number of
   * instances never get the same row while its lease runs.
   */
  claimDue(options: { now: string; leaseUntil: string; claimToken: string; limit: number }): Promise<ClaimedDelivery[]>;
  /**
   * Records an attempt (or a skip) and drops the lease, only if the row is still leased under
   * `claimToken`; false when the lease was lost (the outcome is then not recorded).
   */
  finish(eventId: string, target: NotificationTarget, claimToken: string, outcome: DeliveryOutcome): Promise<boolean>;
  /** Gives back every lease held under `claimToken` (a worker stopping). */
  release(claimToken: string): Promise<void>;
  /**
   * The owner's events that have deliveries, newest first, each with all of its deliveries;
   * `before` is an event id.
   */
  listEvents(owner: string, options: { before?: string; limit: number }): Promise<{ event: AuditEvent; deliveries: NotificationDelivery[] }[]>;
};

/** An owner's webhook signing secret, sealed with the owner's data key. */
export type WebhookSecretRow = {
  owner: string;
  sealed: string;
  /** The secret before the last rotation, still signed with until `previousExpiresAt`. */
  previousSealed: string | null;
  previousExpiresAt: string | null;
  createdAt: string;
  rotatedAt: string | null;
};

export type WebhookSecretRepo = {
  find(owner: string): Promise<WebhookSecretRow | undefined>;
  /** Inserts unless the owner already has one; returns whichever row is stored (race-safe). */
  insertIfAbsent(row: Pick<WebhookSecretRow, "owner" | "sealed" | "createdAt">): Promise<WebhookSecretRow>;
  /**
   * Replaces the owner's secret with `sealed` and keeps the one it replaces as the previous secret
   * until `previousExpiresAt`, atomically. Undefined when the owner has none yet.
   */
  rotate(owner: string, next: { sealed: string; at: string; previousExpiresAt: string }): Promise<WebhookSecretRow | undefined>;
};

/** How the Settings page looks, so it matches the platform that opened it. */
export type PortalTheme = {
  mode?: "light" | "dark";
  /** `#rrggbb`. */
  accentColor?: string;
  productName?: string;
};

/** What a portal session grants: the owner's Settings page, as `sub`, on `tier`. */
export type PortalGrant = {
  owner: string;
  sub: string;
  tier: string;
  returnUrl: string | null;
  theme: PortalTheme;
};

export type NewPortalLink = PortalGrant & {
  id: string;
  /** SHA-256 of the link token (base64url); the token itself is never stored. */
  linkHash: string;
  createdAt: string;
  linkExpiresAt: string;
};

export type PortalSessionRow = PortalGrant & {
  id: string;
  sessionExpiresAt: string;
};

/** Why a link did not open: `unknown` (no such link), `used` (opened before) or `expired`. */
export type PortalOpenRefusal = { reason: "unknown" } | { reason: "used" | "expired"; returnUrl: string | null };

export type PortalSessionRepo = {
  insertLink(link: NewPortalLink): Promise<void>;
  /**
   * Opens a link: succeeds once, on whichever instance asks first, and only before the link
   * expires (one conditional UPDATE). The session's token hash is stored with the row.
   */
  open(
    linkHash: string,
    session: { sessionHash: string; at: string; sessionExpiresAt: string },
  ): Promise<{ ok: true; session: PortalSessionRow } | ({ ok: false } & PortalOpenRefusal)>;
  /** The live session with this token hash, if it has not expired at `at`. */
  findSession(sessionHash: string, at: string): Promise<PortalSessionRow | undefined>;
  /** Ends a session before it expires. */
  deleteSession(sessionHash: string): Promise<boolean>;
  /** Removes links and sessions that ended before `before`. */
  sweep(before: string): Promise<number>;
};

/** An owner's spend limits and alert targets; `null` is "not set". Money in nano-USD. */
export type OwnerLimitsRow = {
  owner: string;
  monthlyBudgetNanoUsd: number | null;
  notifyThresholdNanoUsd: number | null;
  notifyEmail: string | null;
  webhookUrl: string | null;
  updatedAt: string;
};

export type OwnerLimitsRepo = {
  find(owner: string): Promise<OwnerLimitsRow | undefined>;
  /** Inserts or replaces the owner's row. */
  save(row: OwnerLimitsRow): Promise<void>;
};

/**
 * One cap a reservation is checked against: the counter it counts in (`owner`, `platform`,
 * `key:<id>`) and its limit for the month.
 */
export type BudgetCap = { counter: string; limitNanoUsd: number };

/** The month a budget counts over: its key and its first day and the next month's (`YYYY-MM-DD`). */
export type BudgetMonth = { month: string; firstDay: string; nextFirstDay: string };

/** A reservation taken (with every counter's value after it), or the first cap it would pass. */
export type BudgetReserveResult =
  | { ok: true; spentNanoUsd: Record<string, number> }
  | { ok: false; counter: string; spentNanoUsd: number };

/**
 * Spend counters in the database: the ledger of one instance, or of several without Redis. A
 * counter holds the month's settled spend plus its open reservations; it is created from the
 * month's `usage_daily` the first time a cap counts in it.
 */
export type BudgetRepo = {
  /**
   * In one transaction: creates missing counters from `usage_daily`, then adds `amountNanoUsd` to
   * every cap's counter only if none would pass its limit (none changes otherwise).
   */
  reserve(owner: string, month: BudgetMonth, caps: readonly BudgetCap[], amountNanoUsd: number): Promise<BudgetReserveResult>;
  /** Adds `deltaNanoUsd` (negative to give back) to counters that exist; their values after it. */
  adjust(owner: string, month: string, counters: readonly string[], deltaNanoUsd: number): Promise<Record<string, number>>;
  /**
   * The month's settled spend per counter, from `usage_daily` (a counter's starting value):
   * the records' costs, and the tokens of records without a cost at `UNPRICED_FALLBACK` (a
   * day's row that mixes both is charged in full at the fallback, high rather than low).
   */
  settledSpend(owner: string, month: BudgetMonth, counters: readonly string[]): Promise<Record<string, number>>;
  /** The owner's counters of the month that exist. */
  counters(owner: string, month: string): Promise<Record<string, number>>;
  /** Forgets a counter (its cap was removed): the next time it counts it starts again from `usage_daily`. */
  dropCounter(owner: string, month: string, counter: string): Promise<void>;
  /**
   * Records a budget notice once per owner, month and notice, with its audit event (and so its
   * outbox rows) in the same transaction. True only for the call that recorded it.
   */
  recordNotice(owner: string, month: string, notice: string, event: AuditEvent): Promise<boolean>;
};

export type Store = {
  readonly dialect: "sqlite" | "postgres";
  readonly keys: KeyRepo;
  readonly dataKeys: DataKeyRepo;
  readonly masterKeys: MasterKeyRepo;
  readonly audit: AuditRepo;
  readonly idempotency: IdempotencyRepo;
  readonly usage: UsageRepo;
  readonly notifications: NotificationRepo;
  readonly webhookSecrets: WebhookSecretRepo;
  readonly portalSessions: PortalSessionRepo;
  readonly ownerLimits: OwnerLimitsRepo;
  readonly budgets: BudgetRepo;
  readonly operator: OperatorRepo;
  /** Cheap round trip for /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
};
