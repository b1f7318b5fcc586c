import { createHash } from "node:crypto";
import type { Envelope } from "../crypto/envelope.js";
import type { Clock } from "../lib/clock.js";
import type { ProviderId } from "../lib/domain.js";
import { AppError, isAppError } from "../lib/errors.js";
import { newId } from "../lib/ids.js";
import type { IdempotencyRepo, KeyRepo } from "../store/ports.js";
import type { Actor, AuditLog } from "../audit/audit-log.js";
import type { DataKeys } from "./data-keys.js";
import type { KeyAdmission } from "./key-admission.js";
import { auditKeyRejection } from "./key-rejection-audit.js";
import { keyHintOf, type KeyView, toKeyView } from "./key-view.js";

export type CreateKeyInput = {
  owner: string;
  actor: Actor;
  provider: ProviderId;
  apiKey: string;
  label?: string | undefined;
  /** Default: activate when the owner has no active key for this provider yet. */
  activate?: boolean | undefined;
  idempotencyKey?: string | undefined;
};

export type CreateKeyDeps = {
  keys: Pick<KeyRepo, "insert" | "findById" | "findByFingerprint" | "findActive">;
  idempotency: IdempotencyRepo;
  dataKeys: DataKeys;
  envelope: Pick<Envelope, "sealSecret" | "fingerprintSecret">;
  admission: KeyAdmission;
  auditLog: AuditLog;
  clock: Clock;
};

const PROVIDER_NAMES: Record<ProviderId, string> = { openai: "OpenAI", anthropic: "Anthropic" };

/**
 * Stores a new provider key: format check, idempotency, duplicate check, live validation, seal,
 * insert, audit. The plaintext is held only for the duration of this call.
 */
export function createCreateKey(deps: CreateKeyDeps) {
  const { keys, idempotency, dataKeys, envelope, admission, auditLog, clock } = deps;

  /** A refused create (format, provider, limit, duplicate) is audited as `key.rejected`. */
  return function createKey(input: CreateKeyInput): Promise<KeyView> {
    const attempt = { owner: input.owner, actor: input.actor, operation: "create", provider: input.provider } as const;
    return auditKeyRejection(auditLog, attempt, () => createUnaudited(input));
  };

  async function createUnaudited(input: CreateKeyInput): Promise<KeyView> {
    const { owner, provider } = input;
    const apiKey = admission.acceptFormat(provider, input.apiKey);
    const label = input.label ?? `${PROVIDER_NAMES[provider]} key`;
    const fingerprint = await dataKeys.withDataKey(owner, (dataKey) => envelope.fingerprintSecret(dataKey, provider, apiKey));

    if (input.idempotencyKey === undefined) return insertNew();

    const idempotencyKey = input.idempotencyKey;
    // The request hash covers the secret only through its keyed fingerprint: nothing derived
    // from the plaintext alone is stored.
    const requestHash = createHash("sha256")
      .update(JSON.stringify([provider, label, input.activate ?? null, fingerprint]))
      .digest("hex");
    const claim = await idempotency.claim({ owner, key: idempotencyKey, requestHash, createdAt: clock.now().toISOString() });
    if (!claim.claimed) return replay(claim.existing);
    try {
      const view = await insertNew();
      await idempotency.complete(owner, idempotencyKey, 201, JSON.stringify(view));
      return view;
    } catch (error) {
      if (isAppError(error) && error.code === "key_rejected") {
        await idempotency.complete(owner, idempotencyKey, 422, JSON.stringify({ message: error.publicMessage }));
      } else {
        await idempotency.release(owner, idempotencyKey);
      }
      throw error;
    }

    function replay(existing: { requestHash: string; statusCode: number | null; responseBody: string | null }): KeyView {
      if (existing.requestHash !== requestHash) {
        throw new AppError("idempotency_mismatch", "This Idempotency-Key was already used with a different request body.");
      }
      if (existing.statusCode === null || existing.responseBody === null) {
        throw new AppError("idempotency_in_progress", "A request with this Idempotency-Key is still being processed; retry shortly.");
      }
      if (existing.statusCode !== 201) {
        const body = JSON.parse(existing.responseBody) as { message: string };
        throw new AppError("key_rejected", body.message);
      }
      return JSON.parse(existing.responseBody) as KeyView;
    }

    async function insertNew(): Promise<KeyView> {
      const duplicate = await keys.findByFingerprint(owner, fingerprint);
      if (duplicate !== undefined) throw duplicateError(duplicate.id);
      await admission.chargeKeyCheck(owner);
      const admitted = await admission.admit(provider, apiKey);

      const id = newId("key");
      const at = clock.now().toISOString();
      const ciphertext = await dataKeys.withDataKey(owner, (dataKey) =>
        envelope.sealSecret(dataKey, apiKey, { owner, provider, keyId: id }),
      );
      const usable = admitted.status === "valid" || admitted.status === "unverified";
      const activate = input.activate ?? (usable && (await keys.findActive(owner, provider)) === undefined);
      const keyHint = keyHintOf(apiKey);
      // Written with the key, in its transaction.
      const events = [auditLog.event(owner, "key.created", input.actor, { keyId: id, detail: { provider, label, keyHint, status: admitted.status } })];
      if (activate) events.push(auditLog.event(owner, "key.activated", input.actor, { keyId: id, detail: { provider } }));
      const inserted = await keys.insert(
        {
          id,
          owner,
          provider,
          label,
          keyHint,
          fingerprint,
          ciphertext,
          status: admitted.status,
          statusDetail: admitted.statusDetail,
          monthlyLimitNanoUsd: null,
          createdAt: at,
          lastTestedAt: at,
        },
        { activate, at },
        events,
      );
      if (!inserted.ok) throw duplicateError(inserted.existingId);

      const row = await keys.findById(owner, id);
      if (row === undefined) throw new AppError("internal", "Internal error", { internal: { reason: "inserted key not found" } });
      return toKeyView(row);
    }
  }
}

export type CreateKey = ReturnType<typeof createCreateKey>;

export function duplicateError(existingId: string): AppError {
  return new AppError("duplicate_key", `This key is already stored as ${existingId}.`, { internal: { existingId } });
}
