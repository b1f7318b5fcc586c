import type { Principal } from "../../auth/principal.js";
import type { Tier } from "../../config/tiers.js";
import type { Envelope } from "../../crypto/envelope.js";
import { DecryptError } from "../../crypto/decrypt-error.js";
import type { ProviderId } from "../../lib/domain.js";
import type { UpgradeConfig } from "../../config/portal-config.js";
import { AppError } from "../../lib/errors.js";
import type { Redacted } from "../../lib/redacted.js";
import type { DataKeyRepo, KeyRepo, ProviderKeyRow } from "../../store/ports.js";
import type { Guessed, KeyCache } from "../../cache/key-cache.js";
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
  cache: Pick<KeyCache<ActiveKeyRecord>, "getWithGuess">;
  platformKeys: Readonly<Record<ProviderId, Redacted<string> | undefined>>;
  tiers: Readonly<Record<string, Tier>>;
  keyHealth: Pick<KeyHealth, "markUndecryptable">;
  /** The operator's upgrade hint, for plans that do not use the owner's own keys. */
  upgrade: UpgradeConfig;
};

/**
 * The key that serves a new call, and (across instances) an early guess at it. `credential` is
 * the owner's active, usable key when the tier allows BYOK, else the platform key. `guess`, when
 * there is one, is the key the owner's cached record gives while its version is still being read
 * back from Redis: `credential` resolves to that very object when the record was current, and to
 * another key otherwise. Work started on a guess must be undone when it is not confirmed.
 */
export type KeySelection = { credential: Promise<Credential>; guess: Credential | undefined };

const USABLE = new Set(["valid", "unverified"]);

/**
 * Which key serves a call, and why. The only place that decides between the owner's key and the
 * platform's: nothing else reads a platform key.
 */
export function createKeySelector({ keys, dataKeys, envelope, cache, platformKeys, tiers, keyHealth, upgrade }: KeySelectorDeps) {
  function loadActive(owner: string, provider: ProviderId): Guessed<ActiveKeyRecord> {
    return cache.getWithGuess(owner, provider, async () => {
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
   * The key a record gives on a BYOK tier; the owner's key is decrypted here, for this call only.
   * @throws AppError `no_key_available`, `key_undecryptable` (status); DecryptError when it does not open
   */
  function credentialFrom(record: ActiveKeyRecord, provider: ProviderId): Credential {
    if (record === null) return platform(provider, "no_own_key");
    const { row, open } = record;
    if (row.status === "undecryptable") throw undecryptable();
    if (!USABLE.has(row.status)) return platform(provider, "own_key_unusable");
    return { source: "byok", keyId: row.id, row, apiKey: open() };
  }

  /** A record that gives no key gives no guess: a refusal waits for the version to confirm it. */
  function guessFrom(record: ActiveKeyRecord, provider: ProviderId): Credential | undefined {
    try {
      return credentialFrom(record, provider);
    } catch {
      return undefined;
    }
  }

  /**
   * The key from the record `get` confirmed; the guess itself when it came from that record.
   * @throws AppError `no_key_available`; `key_undecryptable` when the owner's active key no longer
   *   opens (never treated as "no key": the key is marked and the call refused)
   */
  async function confirmed(
    pending: ActiveKeyRecord | Promise<ActiveKeyRecord>,
    provider: ProviderId,
    guessed?: { record: ActiveKeyRecord; credential: Credential },
  ): Promise<Credential> {
    const record = await pending;
    if (guessed !== undefined && record === guessed.record) return guessed.credential;
    try {
      return credentialFrom(record, provider);
    } catch (error) {
      if (!(error instanceof DecryptError) || record === null) throw error;
      await keyHealth.markUndecryptable(record.row, error);
      throw undecryptable();
    }
  }

  /** The platform key as a selection (a tier without BYOK reads no cache). */
  async function platformOnly(provider: ProviderId): Promise<Credential> {
    return platform(provider, "byok_not_allowed");
  }

  /** The key for a new call; see {@link KeySelection}. */
  function select(principal: Principal, provider: ProviderId): KeySelection {
    const tier = Object.hasOwn(tiers, principal.tier) ? tiers[principal.tier] : undefined;
    if (tier === undefined || !tier.byokAllowed) return { credential: platformOnly(provider), guess: undefined };
    const found = loadActive(principal.owner, provider);
    const guess = found.hasGuess ? guessFrom(found.guess, provider) : undefined;
    if (!found.hasGuess || guess === undefined) return { credential: confirmed(found.value, provider), guess: undefined };
    return { credential: confirmed(found.value, provider, { record: found.guess, credential: guess }), guess };
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
