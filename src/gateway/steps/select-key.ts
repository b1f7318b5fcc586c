import type { Principal } from "../../auth/principal.js";
import type { Tier } from "../../config/tiers.js";
import type { Envelope } from "../../crypto/envelope.js";
import { DecryptError } from "../../crypto/decrypt-error.js";
import type { ProviderId } from "../../lib/domain.js";
import type { UpgradeConfig } from "../../config/portal-config.js";
import { AppError } from "../../lib/errors.js";
import type { Redacted } from "../../lib/redacted.js";
import type { DataKeyRepo, KeyRepo, ProviderKeyRow } from "../../store/ports.js";
import { nextStepAdvice } from "./key-advice.js";
import type { KeyHealth } from "../../vault/key-health.js";
import { createKeyOpener, type KeyOpener } from "../../vault/open-key.js";
import type { Credential, PlatformReason } from "../call-context.js";

/**
 * The owner's active key record for one provider as the gateway caches it: the row (sealed
 * ciphertext, never plaintext) and its opener, which keeps the unwrapped data key while the
 * record is cached, so a call pays one decryption instead of two.
 */
export type ActiveKeyRecord = { row: ProviderKeyRow; open: KeyOpener } | null;

export type KeySelectorDeps = {
  keys: Pick<KeyRepo, "findActive">;
  dataKeys: Pick<DataKeyRepo, "find">;
  envelope: Pick<Envelope, "prepareSecretOpening">;
  cache: { get(owner: string, slot: string, load: () => Promise<ActiveKeyRecord>): ActiveKeyRecord | Promise<ActiveKeyRecord> };
  platformKeys: Readonly<Record<ProviderId, Redacted<string> | undefined>>;
  tiers: Readonly<Record<string, Tier>>;
  keyHealth: Pick<KeyHealth, "markUndecryptable">;
  /** The operator's upgrade hint, for plans that do not use the owner's own keys. */
  upgrade: UpgradeConfig;
};

const USABLE = new Set(["valid", "unverified"]);

/**
 * Which key serves a call, and why. The only place that decides between the owner's key and the
 * platform's: nothing else reads a platform key.
 */
export function createKeySelector({ keys, dataKeys, envelope, cache, platformKeys, tiers, keyHealth, upgrade }: KeySelectorDeps) {
  function loadActive(owner: string, provider: ProviderId): ActiveKeyRecord | Promise<ActiveKeyRecord> {
    return cache.get(owner, provider, async () => {
      const row = await keys.findActive(owner, provider);
      if (row === undefined) return null;
      // A missing data key still makes a record: its opener fails closed (`undecryptable`).
      const dataKey = await dataKeys.find(owner);
      return { row, open: createKeyOpener(envelope, row, dataKey?.wrapped) };
    });
  }

  /**
   * The platform key for this provider, or `no_key_available` when the operator configured none.
   * @throws AppError `no_key_available`
   */
  function platform(provider: ProviderId, reason: PlatformReason): Credential {
    const apiKey = platformKeys[provider];
    if (apiKey === undefined) {
      const advice = nextStepAdvice(reason, upgrade);
      const message =
        reason === "byok_not_allowed"
          ? `No API key available for ${provider}: your plan uses the platform key, which is not configured for ${provider}. ${advice}`
          : `No API key available for ${provider}: ${advice}`;
      throw new AppError("no_key_available", message);
    }
    return { source: "platform", keyId: null, reason, apiKey };
  }

  /**
   * The key for a new call: the owner's active, usable key when the tier allows BYOK, else the
   * platform key. The owner's key is decrypted here, for this call only.
   * @throws AppError `no_key_available`; `key_undecryptable` when the owner's active key no longer
   *   opens (never treated as "no key": the key is marked and the call refused)
   */
  async function select(principal: Principal, provider: ProviderId): Promise<Credential> {
    const tier = Object.hasOwn(tiers, principal.tier) ? tiers[principal.tier] : undefined;
    if (tier === undefined || !tier.byokAllowed) return platform(provider, "byok_not_allowed");
    const record = await loadActive(principal.owner, provider);
    if (record === null) return platform(provider, "no_own_key");
    const { row, open } = record;
    if (row.status === "undecryptable") throw undecryptable();
    if (!USABLE.has(row.status)) return platform(provider, "own_key_unusable");
    try {
      return { source: "byok", keyId: row.id, row, apiKey: open() };
    } catch (error) {
      if (!(error instanceof DecryptError)) throw error;
      await keyHealth.markUndecryptable(row, error);
      throw undecryptable();
    }
  }

  /** The platform key after the owner's key failed at the provider during this call; `undefined` without one. */
  function fallback(provider: ProviderId): Credential | undefined {
    const apiKey = platformKeys[provider];
    return apiKey === undefined ? undefined : { source: "platform", keyId: null, reason: "own_key_failed", apiKey };
  }

  return { select, fallback };
}

export type KeySelector = ReturnType<typeof createKeySelector>;

function undecryptable(): AppError {
  return new AppError("key_undecryptable", "Your stored API key can no longer be decrypted and must be re-entered in Settings.");
}
