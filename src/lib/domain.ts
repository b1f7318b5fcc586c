/** Vocabulary shared by every layer. String-literal unions, never bare strings. */

export const PROVIDER_IDS = ["openai", "anthropic"] as const;
export type ProviderId = (typeof PROVIDER_IDS)[number];

/**
 * `undecryptable`: the stored ciphertext no longer opens (wrong or lost master key, tampering).
 * It is shown as "needs to be re-entered" and is never treated as "no key".
 */
export const KEY_STATUSES = ["valid", "invalid", "no_credits", "unverified", "undecryptable"] as const;
export type KeyStatus = (typeof KEY_STATUSES)[number];

/** What a live check of a key against its provider found. */
export const KEY_CHECK_RESULTS = ["valid", "invalid", "no_credits", "rate_limited", "unreachable"] as const;
export type KeyCheckResult = (typeof KEY_CHECK_RESULTS)[number];

/** `user:<id>` or `project:<id>`. */
export const OWNER_PATTERN = /^(user|project):[A-Za-z0-9._@-]{1,128}$/;

export const AUDIT_EVENT_TYPES = [
  "key.created",
  "key.activated",
  "key.deactivated",
  "key.updated",
  "key.rotated",
  "key.tested",
  "key.deleted",
  /** A create, secret replacement or test refused before anything was stored: detail.reason says why. */
  "key.rejected",
  "key.invalidated",
  "key.no_credits",
  "key.undecryptable",
  "key.fell_back_to_platform",
  "budget.threshold_reached",
  "budget.exceeded",
] as const;
export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];
