/**
 * Table types as the database stores them: snake_case columns, booleans as integer 0/1,
 * timestamps as ISO-8601 text, money and counters as integers (bigint on PostgreSQL, parsed to
 * JS numbers by the pool). Repos map these to the camelCase port rows field by field.
 */

export type MasterKeysTable = {
  kid: string;
  verifier: string;
  created_at: string;
};

export type DataKeysTable = {
  owner: string;
  kid: string;
  wrapped: string;
  created_at: string;
  updated_at: string;
};

export type ProviderKeysTable = {
  id: string;
  owner: string;
  provider: string;
  label: string;
  key_hint: string;
  fingerprint: string;
  ciphertext: string;
  status: string;
  status_detail: string | null;
  status_changed_at: string;
  /** 0 or 1. */
  is_active: number;
  monthly_limit_nano_usd: number | null;
  created_at: string;
  updated_at: string;
  last_tested_at: string | null;
  last_used_at: string | null;
  total_requests: number;
  total_tokens: number;
  cost_nano_usd: number;
};

export type AuditEventsTable = {
  id: string;
  owner: string;
  type: string;
  key_id: string | null;
  actor: string;
  ip: string | null;
  user_agent: string | null;
  /** JSON object as text. */
  detail: string;
  created_at: string;
};

export type IdempotencyKeysTable = {
  owner: string;
  key: string;
  request_hash: string;
  status_code: number | null;
  response_body: string | null;
  created_at: string;
};

export type UsageRecordsTable = {
  id: string;
  owner: string;
  key_id: string | null;
  source: string;
  /** The caller's tier (migration 0009); null on older rows. */
  tier: string | null;
  provider: string;
  endpoint: string;
  model: string;
  input_tokens: number | null;
  output_tokens: number | null;
  cached_input_tokens: number | null;
  cache_write_tokens: number | null;
  cost_nano_usd: number | null;
  /** Unit prices in nano-USD per million tokens; all four null when the model had no price. */
  price_input: number | null;
  price_output: number | null;
  price_cached_input: number | null;
  price_cache_write: number | null;
  status: string;
  http_status: number;
  latency_ms: number;
  ttfb_ms: number | null;
  /** 0 or 1. */
  streamed: number;
  request_id: string;
  created_at: string;
};

/**
 * The daily roll-up of `usage_records` (migration 0003): sums per owner, UTC day, source,
 * provider, model and key, kept in step by the usage batch. Counts and sums treat null as 0;
 * `unpriced` counts records whose cost is null.
 */
export type UsageDailyTable = {
  owner: string;
  /** `YYYY-MM-DD`: the first ten characters of the records' `created_at`. */
  day: string;
  source: string;
  provider: string;
  model: string;
  /** The key id, or `PLATFORM_KEY_ID` for platform records (a primary key holds no null). */
  key_id: string;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cached_input_tokens: number;
  cost_nano_usd: number;
  unpriced: number;
};

/**
 * `usage_daily.key_id` of platform records. Never a real key id: the recorder refuses a record
 * whose key id is an empty string.
 */
export const PLATFORM_KEY_ID = "";

/** One notification event's delivery to one target (migration 0006). */
export type NotificationDeliveriesTable = {
  event_id: string;
  target: string;
  /** `pending`, `delivered`, `failed` (given up) or `skipped` (target not set up). */
  state: string;
  attempts: number;
  /** When a pending row is due; null once it is final. */
  next_attempt_at: string | null;
  /** A worker's lease on the row; another worker may take it once this has passed. */
  claimed_until: string | null;
  claim_token: string | null;
  last_attempt_at: string | null;
  last_error: string | null;
  delivered_at: string | null;
  created_at: string;
};

/** An owner's webhook signing secret, sealed with the owner's data key (migration 0006). */
export type WebhookSecretsTable = {
  owner: string;
  sealed: string;
  previous_sealed: string | null;
  previous_expires_at: string | null;
  created_at: string;
  rotated_at: string | null;
};

export type PortalSessionsTable = {
  id: string;
  /** SHA-256 of the link token, base64url. */
  link_hash: string;
  /** SHA-256 of the session token, set when the link is opened. */
  session_hash: string | null;
  owner: string;
  sub: string;
  tier: string;
  return_url: string | null;
  /** JSON object as text. */
  theme: string;
  created_at: string;
  link_expires_at: string;
  opened_at: string | null;
  session_expires_at: string | null;
};

/** An owner's spend limits and alert targets (migration 0008); money in nano-USD. */
export type OwnerLimitsTable = {
  owner: string;
  monthly_budget_nano_usd: number | null;
  notify_threshold_nano_usd: number | null;
  notify_email: string | null;
  webhook_url: string | null;
  updated_at: string;
};

/** What one cap has counted in one month: settled spend plus open reservations (migration 0008). */
export type BudgetCountersTable = {
  owner: string;
  /** `YYYY-MM` (UTC). */
  month: string;
  /** `owner`, `platform` or `key:<id>`. */
  counter: string;
  spent_nano_usd: number;
};

/** A budget notification already sent for an owner and month (migration 0008). */
export type BudgetNoticesTable = {
  owner: string;
  month: string;
  /** `threshold` or `exceeded:<counter>`. */
  notice: string;
  event_id: string;
  created_at: string;
};

/** Every table the store reads or writes. */
export type Database = {
  master_keys: MasterKeysTable;
  data_keys: DataKeysTable;
  provider_keys: ProviderKeysTable;
  audit_events: AuditEventsTable;
  idempotency_keys: IdempotencyKeysTable;
  usage_records: UsageRecordsTable;
  usage_daily: UsageDailyTable;
  notification_deliveries: NotificationDeliveriesTable;
  webhook_secrets: WebhookSecretsTable;
  portal_sessions: PortalSessionsTable;
  owner_limits: OwnerLimitsTable;
  budget_counters: BudgetCountersTable;
  budget_notices: BudgetNoticesTable;
};

/** Unique indexes whose violation is an expected outcome, named identically on both dialects. */
export const UNIQUE_INDEXES = {
  providerKeyFingerprint: {
    name: "provider_keys_owner_fingerprint_unique",
    table: "provider_keys",
    columns: ["owner", "fingerprint"],
  },
} as const;

export type UniqueIndex = (typeof UNIQUE_INDEXES)[keyof typeof UNIQUE_INDEXES];
