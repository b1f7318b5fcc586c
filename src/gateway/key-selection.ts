import type { Principal } from "../auth/principal.js";
import type { Tier } from "../config/tiers.js";
import type { ProviderId } from "../lib/domain.js";
import type { Redacted } from "../lib/redacted.js";
import type { Envelope } from "../crypto/envelope.js";
import type { DataKeyRepo, KeyRepo, ProviderKeyRow } from "../store/ports.js";
import { createKeyOpener, type KeyOpener } from "../vault/open-key.js";

/**
 * The owner's active key record for one provider as the gateway caches it: the row (sealed
 * ciphertext, never plaintext) and its opener, which keeps the unwrapped data key while the
 * record is cached, so a call pays one decryption instead of two.
 */
export type ActiveKeyRecord = { row: ProviderKeyRow; open: KeyOpener } | null;

/** Why the platform key serves a call. */
export type PlatformReason = "no_own_key" | "byok_not_allowed" | "own_key_unusable" | "own_key_failed";

/**
 * Which credential serves a call, and why. The only place that decides between the owner's key
 * and the platform's: nothing else reads a platform key.
 */
export type KeySelection =
  | { source: "byok"; record: NonNullable<ActiveKeyRecord> }
  | { source: "platform"; reason: PlatformReason; apiKey: Redacted<string> }
  | { source: "none"; reason: PlatformReason }
  /** The owner's active key no longer decrypts: never treated as "no key". */
  | { source: "blocked"; record: NonNullable<ActiveKeyRecord> };

export type KeySelectorDeps = {
  keys: Pick<KeyRepo, "findActive">;
  dataKeys: Pick<DataKeyRepo, "find">;
  envelope: Pick<Envelope, "prepareSecretOpening">;
  cache: { get(owner: string, slot: string, load: () => Promise<ActiveKeyRecord>): ActiveKeyRecord | Promise<ActiveKeyRecord> };
  platformKeys: Readonly<Record<ProviderId, Redacted<string> | undefined>>;
  tiers: Readonly<Record<string, Tier>>;
};

const USABLE = new Set(["valid", "unverified"]);

export function createKeySelector({ keys, dataKeys, envelope, cache, platformKeys, tiers }: KeySelectorDeps) {
  function loadActive(owner: string, provider: ProviderId): ActiveKeyRecord | Promise<ActiveKeyRecord> {
    return cache.get(owner, provider, async () => {
      const row = await keys.findActive(owner, provider);
      if (row === undefined) return null;
      // A missing data key still makes a record: its opener fails closed (`undecryptable`).
      const dataKey = await dataKeys.find(owner);
      return { row, open: createKeyOpener(envelope, row, dataKey?.wrapped) };
    });
  }

  function platform(provider: ProviderId, reason: PlatformReason): KeySelection {
    const apiKey = platformKeys[provider];
    return apiKey === undefined ? { source: "none", reason } : { source: "platform", reason, apiKey };
  }

  function fromRecord(record: ActiveKeyRecord, provider: ProviderId): KeySelection {
    if (record === null) return platform(provider, "no_own_key");
    if (record.row.status === "undecryptable") return { source: "blocked", record };
    if (!USABLE.has(record.row.status)) return platform(provider, "own_key_unusable");
    return { source: "byok", record };
  }

  /**
   * `skipOwnKey`: the owner's key just failed at the provider during this call. Answers without a
   * promise when the key record comes from the cache synchronously (the usual call).
   */
  function select(principal: Principal, provider: ProviderId, options: { skipOwnKey?: boolean } = {}): KeySelection | Promise<KeySelection> {
    if (options.skipOwnKey === true) return platform(provider, "own_key_failed");
    const tier = Object.hasOwn(tiers, principal.tier) ? tiers[principal.tier] : undefined;
    if (tier === undefined || !tier.byokAllowed) return platform(provider, "byok_not_allowed");
    const record = loadActive(principal.owner, provider);
    return record instanceof Promise ? record.then((loaded) => fromRecord(loaded, provider)) : fromRecord(record, provider);
  }

  return { select };
}

export type KeySelector = ReturnType<typeof createKeySelector>;
