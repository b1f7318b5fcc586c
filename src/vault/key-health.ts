import type { Clock } from "../lib/clock.js";
import type { AuditEventType, KeyStatus } from "../lib/domain.js";
import type { KeyRepo, ProviderKeyRow } from "../store/ports.js";
import { type Actor, type AuditLog, SYSTEM_ACTOR } from "../audit/audit-log.js";

export type KeyHealthDeps = {
  keys: Pick<KeyRepo, "setStatus">;
  auditLog: AuditLog;
  clock: Clock;
};

const EVENT_FOR_STATUS: Partial<Record<KeyStatus, AuditEventType>> = {
  invalid: "key.invalidated",
  no_credits: "key.no_credits",
  undecryptable: "key.undecryptable",
};

/**
 * Status changes that come from what a provider (or the decryption) said, outside the owner's
 * own edits: the key test, the gateway at call time. Each change records the detail, the time and
 * an audit event, once: a key already in that status is left alone.
 */
export function createKeyHealth({ keys, auditLog, clock }: KeyHealthDeps) {
  async function markStatus(
    row: ProviderKeyRow,
    status: Exclude<KeyStatus, "valid" | "unverified">,
    statusDetail: string,
    actor: Actor = SYSTEM_ACTOR,
  ): Promise<ProviderKeyRow | undefined> {
    if (row.status === status) return row;
    const updated = await keys.setStatus(row.owner, row.id, { status, statusDetail, at: clock.now().toISOString() });
    const type = EVENT_FOR_STATUS[status];
    if (type !== undefined) {
      await auditLog.record(row.owner, type, actor, { keyId: row.id, detail: { provider: row.provider, reason: statusDetail } });
    }
    return updated;
  }

  return { markStatus };
}

export type KeyHealth = ReturnType<typeof createKeyHealth>;
