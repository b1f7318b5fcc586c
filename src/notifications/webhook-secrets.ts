import type { Envelope, SecretBinding } from "../crypto/envelope.js";
import type { Clock } from "../lib/clock.js";
import { type Redacted, redacted } from "../lib/redacted.js";
import type { WebhookSecretRepo } from "../store/ports.js";
import type { DataKeys } from "../vault/data-keys.js";
import { generateWebhookSecret } from "./webhook-signature.js";

export type WebhookSecretsDeps = {
  repo: WebhookSecretRepo;
  dataKeys: Pick<DataKeys, "withDataKey">;
  envelope: Pick<Envelope, "sealSecret" | "openSecret">;
  clock: Clock;
};

/** How long deliveries are still signed with the secret a rotation replaced (both signatures). */
export const ROTATION_OVERLAP_MS = 24 * 3_600_000;

/**
 * Where a sealed webhook secret lives, bound into its AAD like a provider key's row. `webhook`
 * is no provider id, so neither kind of blob opens as the other.
 */
function bindingOf(owner: string): SecretBinding {
  return { owner, provider: "webhook", keyId: "whsec" };
}

/**
 * Each owner's Standard Webhooks signing secret (`whsec_…`), generated on first use and sealed
 * with the owner's data key. The plaintext leaves only as `Redacted`: to the owner through
 * `GET /api/v1/limits` and the rotation route, and to the signer.
 */
export function createWebhookSecrets({ repo, dataKeys, envelope, clock }: WebhookSecretsDeps) {
  const seal = (owner: string, secret: string) => dataKeys.withDataKey(owner, (dataKey) => envelope.sealSecret(dataKey, secret, bindingOf(owner)));
  const open = (owner: string, sealed: string) => dataKeys.withDataKey(owner, (dataKey) => envelope.openSecret(dataKey, sealed, bindingOf(owner)));

  async function storedOrNew(owner: string) {
    const stored = await repo.find(owner);
    if (stored !== undefined) return stored;
    // Concurrent first uses race on the insert; every caller gets the row that won.
    return repo.insertIfAbsent({ owner, sealed: await seal(owner, generateWebhookSecret()), createdAt: clock.now().toISOString() });
  }

  /** The owner's current secret, created if the owner has none yet. */
  async function reveal(owner: string): Promise<Redacted<string>> {
    const row = await storedOrNew(owner);
    return redacted(await open(owner, row.sealed));
  }

  /**
   * Replaces the owner's secret with a new one and returns it. Deliveries keep carrying a
   * signature made with the old one too for `ROTATION_OVERLAP_MS`, so a receiver can switch
   * without dropping events.
   */
  async function rotate(owner: string): Promise<Redacted<string>> {
    await storedOrNew(owner);
    const secret = generateWebhookSecret();
    const now = clock.now();
    const rotated = await repo.rotate(owner, {
      sealed: await seal(owner, secret),
      at: now.toISOString(),
      previousExpiresAt: new Date(now.getTime() + ROTATION_OVERLAP_MS).toISOString(),
    });
    if (rotated === undefined) throw new Error("webhook secret vanished during its rotation");
    return redacted(secret);
  }

  /** The secrets a delivery is signed with now: the current one, then the previous one while it overlaps. */
  async function signingSecrets(owner: string): Promise<Redacted<string>[]> {
    const row = await storedOrNew(owner);
    const secrets = [redacted(await open(owner, row.sealed))];
    if (row.previousSealed !== null && row.previousExpiresAt !== null && row.previousExpiresAt > clock.now().toISOString()) {
      secrets.push(redacted(await open(owner, row.previousSealed)));
    }
    return secrets;
  }

  return { reveal, rotate, signingSecrets };
}

export type WebhookSecrets = ReturnType<typeof createWebhookSecrets>;
