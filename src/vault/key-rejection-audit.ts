import type { Actor, AuditLog } from "../audit/audit-log.js";
import type { ProviderId } from "../lib/domain.js";
import { type ErrorCode, isAppError } from "../lib/errors.js";

/** Why a key create, replacement or test was refused, as the audit trail records it. */
export type KeyRejectionReason = "format_error" | "provider_rejected" | "rate_limited" | "duplicate";

/** One attempt to submit or check a key. */
export type KeyAttempt = {
  owner: string;
  actor: Actor;
  operation: "create" | "replace" | "test";
  /** Known for creates; replacements and tests name the stored key instead. */
  provider?: ProviderId;
  keyId?: string;
};

const REASONS: Partial<Record<ErrorCode, KeyRejectionReason>> = {
  invalid_key_format: "format_error",
  key_rejected: "provider_rejected",
  rate_limited: "rate_limited",
  duplicate_key: "duplicate",
};

/**
 * Runs one key attempt and, when it is refused for a reason that concerns the key (its format,
 * the provider's answer, the key-check limit, a duplicate), records `key.rejected` before the
 * error goes on to the caller. Creates and tests are how a stolen key would be tried out, so the
 * owner and the operator see every refused one. The detail holds the reason and the public
 * message (which never quotes the key), never the key or its hint.
 */
export async function auditKeyRejection<T>(auditLog: AuditLog, attempt: KeyAttempt, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    const reason = isAppError(error) ? REASONS[error.code] : undefined;
    if (reason !== undefined && isAppError(error)) {
      const problem = reason === "format_error" && typeof error.internal.reason === "string" ? { problem: error.internal.reason } : {};
      await auditLog.record(attempt.owner, "key.rejected", attempt.actor, {
        keyId: attempt.keyId ?? null,
        detail: {
          operation: attempt.operation,
          ...(attempt.provider === undefined ? {} : { provider: attempt.provider }),
          reason,
          ...problem,
          message: error.publicMessage,
        },
      });
    }
    throw error;
  }
}
