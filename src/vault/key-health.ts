import type { DecryptError } from "../crypto/decrypt-error.js";
import type { Clock } from "../lib/clock.js";
import type { AuditEventType, KeyStatus } from "../lib/domain.js";
import type { MetricsPort } from "../lib/metrics-port.js";
import type { KeyRepo, ProviderKeyRow } from "../store/ports.js";
import { type Actor, type AuditLog, SYSTEM_ACTOR } from "../audit/audit-log.js";

export type KeyHealthDeps = {
  keys: Pick<KeyRepo, "setStatus">;
  auditLog: AuditLog;
  clock: Clock;
  /** Told about every status change this service makes (default: counts nothing). */
  metrics?: Pick<MetricsPort, "keyStatusChanged">;
};

/** Status changes remembered so that late calls holding the old row do not write them again (bounded; forgetting one costs only a no-op write). */
const MAX_REMEMBERED_CHANGES = 1_024;

const EVENT_FOR_STATUS: Partial<Record<KeyStatus, AuditEventType>> = {
  invalid: "key.invalidated",
  no_credits: "key.no_credits",
  undecryptable: "key.undecryptable",
};

/**
 * The `statusDetail` of a key that does not decrypt. It says who can repair it: a provider-key
 * blob that does not open is repaired by re-entering the key; when the owner's data key is
 * missing or does not open, re-entering cannot help (a new secret must be sealed with that same
 * data key), and only the operator can, by restoring it.
 */
export function undecryptableDetail(error: DecryptError): string {
  if (error.subject !== "data_key") return "The stored key could not be decrypted; re-enter it.";
  if (error.reason === "missing_data_key") {
    return "The data key that encrypts this owner's stored keys is missing from the database; the operator must restore it from a backup.";
  }
  return "The data key that encrypts this owner's stored keys does not open (damaged, or from another deployment); the operator must restore it from a backup.";
}

/**
 * Status changes that come from what a provider (or the decryption) said, outside the owner's
 * own edits: the key test, the gateway at call time. Each change records the detail, the time and
 * an audit event, once: a key already in that status is left alone, and of many concurrent calls
 * marking the same key (every call in flight on a key that was just revoked) exactly one changes
 * it, in the store's compare-and-set, and writes the event.
 * @returns the updated row when this call changed the status; `undefined` when it already had it
 *   (or the key is gone)
 */
export function createKeyHealth({ keys, auditLog, clock, metrics }: KeyHealthDeps) {
  // Every write goes through the key cache's change announcement (a Redis round trip and a
  // version bump on every instance), even one the compare-and-set then finds already made. So
  // callers holding the same row version join the change in flight, and a row version already
  // changed is not written again: a revoked key costs one announcement per instance, not one per
  // call in flight on it.
  const inFlight = new Map<string, Promise<ProviderKeyRow | undefined>>();
  const done = new Set<string>();

  async function markStatus(
    row: ProviderKeyRow,
    status: Exclude<KeyStatus, "valid" | "unverified">,
    statusDetail: string,
    actor: Actor = SYSTEM_ACTOR,
  ): Promise<ProviderKeyRow | undefined> {
    if (row.status === status) return undefined;
    const change = `${row.id} ${row.updatedAt} ${row.statusChangedAt} ${status}`;
    if (done.has(change)) return undefined;
    const joined = inFlight.get(change);
    if (joined !== undefined) {
      await joined.catch(() => undefined);
      return undefined;
    }
    const type = EVENT_FOR_STATUS[status];
    const events = type === undefined ? [] : [auditLog.event(row.owner, type, actor, { keyId: row.id, detail: { provider: row.provider, reason: statusDetail } })];
    // Only if the status is still different: instances that learn the same thing change it once.
    const write = keys.setStatus(row.owner, row.id, { status, statusDetail, at: clock.now().toISOString(), onlyIfDifferent: true }, events);
    inFlight.set(change, write);
    try {
      const changed = await write;
      if (changed !== undefined) metrics?.keyStatusChanged(row.provider, status);
      if (done.size >= MAX_REMEMBERED_CHANGES) done.clear();
      done.add(change);
      return changed;
    } finally {
      inFlight.delete(change);
    }
  }

  /** Marks a key whose stored secret did not open, with a detail that says who can repair it. */
  function markUndecryptable(row: ProviderKeyRow, error: DecryptError): Promise<ProviderKeyRow | undefined> {
    return markStatus(row, "undecryptable", undecryptableDetail(error));
  }

  return { markStatus, markUndecryptable };
}

export type KeyHealth = ReturnType<typeof createKeyHealth>;
