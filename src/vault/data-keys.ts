import { DecryptError } from "../crypto/decrypt-error.js";
import type { Envelope } from "../crypto/envelope.js";
import type { Clock } from "../lib/clock.js";
import { AppError } from "../lib/errors.js";
import type { DataKeyRepo, KeyRepo } from "../store/ports.js";
import type { KeyHealth } from "./key-health.js";

export type DataKeysDeps = {
  dataKeys: Pick<DataKeyRepo, "find" | "insertIfAbsent">;
  keys: Pick<KeyRepo, "list">;
  keyHealth: Pick<KeyHealth, "markUndecryptable">;
  envelope: Pick<Envelope, "createDataKey" | "unwrapDataKey">;
  clock: Clock;
};

/**
 * Per-owner data keys. An owner's data key is created on first use; the unwrapped key is handed
 * to a callback and not kept, so it lives in memory only while one operation needs it.
 *
 * Fails closed: a data key is created only for an owner who has no stored provider keys (the
 * store refuses otherwise, in the same statement). An owner whose keys were sealed with a data key
 * that is gone, or that does not open, gets no new one: that would make the stored ciphertexts
 * unreadable for good, even after the old row is restored from a backup. Every stored key of such
 * an owner is marked `undecryptable` (with an audit event) and the operation fails with 409
 * `key_undecryptable`.
 */
export function createDataKeys({ dataKeys, keys, keyHealth, envelope, clock }: DataKeysDeps) {
  async function unwrapOrCreate(owner: string): Promise<Buffer> {
    const stored = await dataKeys.find(owner);
    if (stored !== undefined) return envelope.unwrapDataKey(owner, stored.wrapped);
    const fresh = envelope.createDataKey(owner);
    const at = clock.now().toISOString();
    const winner = await dataKeys.insertIfAbsent({ owner, kid: fresh.kid, wrapped: fresh.wrapped, createdAt: at, updatedAt: at });
    // Another request may have created the owner's key first: use whichever row is stored.
    if (winner?.wrapped === fresh.wrapped) return fresh.dataKey;
    fresh.dataKey.fill(0);
    if (winner === undefined) throw new DecryptError("missing_data_key", "data_key");
    return envelope.unwrapDataKey(owner, winner.wrapped);
  }

  async function refuse(owner: string, error: DecryptError): Promise<never> {
    for (const row of await keys.list(owner)) await keyHealth.markUndecryptable(row, error);
    const message =
      error.reason === "missing_data_key"
        ? "Your stored API keys can no longer be decrypted: the data key that encrypts them is missing from the database. No key can be added, replaced or tested until the operator restores it from a backup (or every stored key is deleted)."
        : "Your stored API keys can no longer be decrypted: the data key that encrypts them does not open. No key can be added, replaced or tested until the operator restores it from a backup.";
    throw new AppError("key_undecryptable", message, { internal: { reason: error.reason, subject: "data_key" } });
  }

  /**
   * Runs `use` with the owner's data key (created if the owner has none and no stored keys) and
   * wipes the buffer afterwards. Throws 409 `key_undecryptable` when the data key is missing or
   * does not open.
   */
  async function withDataKey<T>(owner: string, use: (dataKey: Buffer) => Promise<T> | T): Promise<T> {
    let dataKey: Buffer;
    try {
      dataKey = await unwrapOrCreate(owner);
    } catch (error) {
      if (!(error instanceof DecryptError)) throw error;
      return refuse(owner, error);
    }
    try {
      return await use(dataKey);
    } finally {
      dataKey.fill(0);
    }
  }

  return { withDataKey };
}

export type DataKeys = ReturnType<typeof createDataKeys>;
