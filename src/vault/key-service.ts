import type { Envelope } from "../crypto/envelope.js";
import { DecryptError } from "../crypto/decrypt-error.js";
import type { Clock } from "../lib/clock.js";
import type { KeyCheckResult, ProviderId } from "../lib/domain.js";
import { AppError } from "../lib/errors.js";
import { usdToNano } from "../lib/money.js";
import { type Redacted, redacted } from "../lib/redacted.js";
import type { KeyPatch, KeyRepo, ProviderKeyRow } from "../store/ports.js";
import type { Actor, AuditLog } from "../audit/audit-log.js";
import { duplicateError } from "./create-key.js";
import type { DataKeys } from "./data-keys.js";
import type { KeyAdmission } from "./key-admission.js";
import type { KeyHealth } from "./key-health.js";
import { statusFromCheck } from "./key-checks.js";
import { auditKeyRejection } from "./key-rejection-audit.js";
import { keyHintOf, type KeyView, toKeyView } from "./key-view.js";

export type KeyServiceDeps = {
  keys: KeyRepo;
  dataKeys: DataKeys;
  envelope: Pick<Envelope, "sealSecret" | "openSecret" | "fingerprintSecret">;
  admission: KeyAdmission;
  auditLog: AuditLog;
  keyHealth: KeyHealth;
  clock: Clock;
};

export type KeyUpdate = { label?: string; isActive?: boolean; monthlyLimitUsd?: number | null };

export type KeyTestOutcome = { result: KeyCheckResult; message: string; key: KeyView };

/**
 * Everything an owner does to stored keys after creating them. Every read and write is scoped
 * by owner in the query itself: another owner's key id is a 404, exactly like a missing one.
 */
export function createKeyService(deps: KeyServiceDeps) {
  const { keys, dataKeys, envelope, admission, auditLog, keyHealth, clock } = deps;

  async function mustFind(owner: string, id: string): Promise<ProviderKeyRow> {
    const row = await keys.findById(owner, id);
    if (row === undefined) throw notFound(id);
    return row;
  }

  async function list(owner: string, provider?: ProviderId): Promise<KeyView[]> {
    return (await keys.list(owner, provider)).map(toKeyView);
  }

  async function get(owner: string, id: string): Promise<KeyView> {
    return toKeyView(await mustFind(owner, id));
  }

  async function update(owner: string, id: string, change: KeyUpdate, actor: Actor): Promise<KeyView> {
    const before = await mustFind(owner, id);
    const at = clock.now().toISOString();
    const patch: KeyPatch = {};
    if (change.label !== undefined) patch.label = change.label;
    if (change.monthlyLimitUsd !== undefined) {
      patch.monthlyLimitNanoUsd = change.monthlyLimitUsd === null ? null : usdToNano(change.monthlyLimitUsd);
    }
    let row: ProviderKeyRow | undefined = before;
    // Each write stores its audit event in its own transaction (only when it found the key).
    if (Object.keys(patch).length > 0) {
      row = await keys.update(owner, id, patch, at, [auditLog.event(owner, "key.updated", actor, { keyId: id, detail: { fields: Object.keys(change) } })]);
    }
    if (change.isActive === true && !before.isActive) {
      row = await keys.activate(owner, id, at, [auditLog.event(owner, "key.activated", actor, { keyId: id, detail: { provider: before.provider } })]);
    } else if (change.isActive === false && before.isActive) {
      row = await keys.deactivate(owner, id, at, [auditLog.event(owner, "key.deactivated", actor, { keyId: id, detail: { provider: before.provider } })]);
    }
    if (row === undefined) throw notFound(id);
    return toKeyView(row);
  }

  /** Replaces the secret in place: same id, new hint, re-validated. A refused one is audited as `key.rejected`. */
  function replaceSecret(owner: string, id: string, rawKey: string, actor: Actor): Promise<KeyView> {
    return auditKeyRejection(auditLog, { owner, actor, operation: "replace", keyId: id }, () => replaceSecretUnaudited(owner, id, rawKey, actor));
  }

  async function replaceSecretUnaudited(owner: string, id: string, rawKey: string, actor: Actor): Promise<KeyView> {
    const row = await mustFind(owner, id);
    const apiKey = admission.acceptFormat(row.provider, rawKey);
    const binding = { owner, provider: row.provider, keyId: id };
    const { fingerprint, ciphertext } = await dataKeys.withDataKey(owner, (dataKey) => ({
      fingerprint: envelope.fingerprintSecret(dataKey, row.provider, apiKey),
      ciphertext: envelope.sealSecret(dataKey, apiKey, binding),
    }));
    const duplicate = await keys.findByFingerprint(owner, fingerprint);
    if (duplicate !== undefined && duplicate.id !== id) throw duplicateError(duplicate.id);
    await admission.chargeKeyCheck(owner);
    const admitted = await admission.admit(row.provider, apiKey);
    const at = clock.now().toISOString();
    const keyHint = keyHintOf(apiKey);
    const rotated = auditLog.event(owner, "key.rotated", actor, { keyId: id, detail: { provider: row.provider, keyHint, status: admitted.status } });
    const replaced = await keys.replaceSecret(
      owner,
      id,
      { ciphertext, keyHint, fingerprint, status: admitted.status, statusDetail: admitted.statusDetail, at, testedAt: at },
      [rotated],
    );
    if (!replaced.ok) throw duplicateError(replaced.existingId);
    if (replaced.row === undefined) throw notFound(id);
    return toKeyView(replaced.row);
  }

  /**
   * The plaintext of a stored key, for the duration of the caller's call. A ciphertext that does
   * not open marks the key `undecryptable` and fails closed: nothing is sent upstream.
   */
  async function openStored(row: ProviderKeyRow): Promise<Redacted<string>> {
    try {
      return redacted(
        await dataKeys.withDataKey(row.owner, (dataKey) =>
          envelope.openSecret(dataKey, row.ciphertext, { owner: row.owner, provider: row.provider, keyId: row.id }),
        ),
      );
    } catch (error) {
      if (!(error instanceof DecryptError)) throw error;
      await keyHealth.markUndecryptable(row, error);
      throw new AppError(
        "key_undecryptable",
        `Key ${row.id} can no longer be decrypted and must be re-entered (PUT /api/v1/api-keys/${row.id}/secret).`,
        { internal: { reason: error.reason } },
      );
    }
  }

  /** A test refused by the key-check limit is audited as `key.rejected`. */
  function test(owner: string, id: string, actor: Actor): Promise<KeyTestOutcome> {
    return auditKeyRejection(auditLog, { owner, actor, operation: "test", keyId: id }, () => testUnaudited(owner, id, actor));
  }

  async function testUnaudited(owner: string, id: string, actor: Actor): Promise<KeyTestOutcome> {
    const row = await mustFind(owner, id);
    await admission.chargeKeyCheck(owner);
    const check = await admission.checkLive(row.provider, await openStored(row));
    const at = clock.now().toISOString();
    // Transient answers (rate limited, unreachable) say nothing about the key: keep its status.
    const checked = statusFromCheck(check.result);
    const status = checked ?? row.status;
    const statusDetail = checked === undefined ? row.statusDetail : checked === "valid" ? null : check.message;
    const events = [auditLog.event(owner, "key.tested", actor, { keyId: id, detail: { provider: row.provider, result: check.result } })];
    if (status !== row.status && (status === "invalid" || status === "no_credits")) {
      events.push(
        auditLog.event(owner, status === "invalid" ? "key.invalidated" : "key.no_credits", actor, {
          keyId: id,
          detail: { provider: row.provider, reason: check.message },
        }),
      );
    }
    const updated = await keys.setStatus(owner, id, { status, statusDetail, at, testedAt: at }, events);
    if (updated === undefined) throw notFound(id);
    return { result: check.result, message: check.message, key: toKeyView(updated) };
  }

  async function remove(owner: string, id: string, actor: Actor): Promise<void> {
    const row = await mustFind(owner, id);
    const deleted = auditLog.event(owner, "key.deleted", actor, { keyId: id, detail: { provider: row.provider, label: row.label, keyHint: row.keyHint } });
    if (!(await keys.delete(owner, id, [deleted]))) throw notFound(id);
  }

  return { list, get, update, replaceSecret, test, remove };
}

export type KeyService = ReturnType<typeof createKeyService>;

function notFound(id: string): AppError {
  return new AppError("not_found", `No API key with id ${id}.`);
}
