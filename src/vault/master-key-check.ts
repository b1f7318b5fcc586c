import type { MasterKeyring } from "../crypto/master-keys.js";
import type { Clock } from "../lib/clock.js";
import type { DataKeyRepo, MasterKeyRepo } from "../store/ports.js";

/** Raised when the configured master keys cannot open what the database holds. */
export class MasterKeyMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MasterKeyMismatchError";
  }
}

export type MasterKeyCheckDeps = {
  masterKeys: MasterKeyRepo;
  dataKeys: Pick<DataKeyRepo, "countByKid">;
  clock: Clock;
};

/**
 * Start-up check of ENCRYPTION_KEY (and ENCRYPTION_KEY_PREVIOUS) against what the database
 * recorded. Refuses to go on with keys that would make stored secrets unreadable, naming key
 * fingerprints (kids), never keys. Records the current key's verifier on success, which is how a
 * new key is staged during a rotation.
 */
export async function checkMasterKeys({ masterKeys, dataKeys, clock }: MasterKeyCheckDeps, keyring: MasterKeyring): Promise<void> {
  const stored = await masterKeys.list();
  const storedByKid = new Map(stored.map((row) => [row.kid, row.verifier]));

  for (const { kid, verifier } of keyring.verifiers()) {
    const expected = storedByKid.get(kid);
    if (expected !== undefined && expected !== verifier) {
      throw new MasterKeyMismatchError(
        `Master key ${kid} does not match the verifier stored in the database. The database or the key has been altered; restore the original ENCRYPTION_KEY.`,
      );
    }
  }

  const knownKids = keyring.kids.filter((kid) => storedByKid.has(kid));
  if (stored.length > 0 && knownKids.length === 0) {
    throw new MasterKeyMismatchError(
      `ENCRYPTION_KEY (fingerprint ${keyring.current.kid}) is not the key this database was encrypted with ` +
        `(recorded: ${stored.map((row) => row.kid).join(", ")}). Set ENCRYPTION_KEY to the original key. ` +
        "To rotate to a new key, set ENCRYPTION_KEY to the new key and ENCRYPTION_KEY_PREVIOUS to the old one, then run `keyport rotate-encryption-key`.",
    );
  }

  const counts = await dataKeys.countByKid();
  const missing = Object.entries(counts).filter(([kid, count]) => count > 0 && keyring.find(kid) === undefined);
  if (missing.length > 0) {
    const list = missing.map(([kid, count]) => `${kid} (${count} data keys)`).join(", ");
    throw new MasterKeyMismatchError(
      `Stored data keys are wrapped by master keys that are not configured: ${list}. ` +
        "Add the old key to ENCRYPTION_KEY_PREVIOUS (comma-separated) until `keyport rotate-encryption-key` has rewrapped them.",
    );
  }

  const createdAt = clock.now().toISOString();
  for (const { kid, verifier } of keyring.verifiers()) {
    if (!storedByKid.has(kid)) await masterKeys.insert({ kid, verifier, createdAt });
  }
}

/**
 * What the database holds that a master key must open: the master-key ids it recorded and how
 * many data keys it stores. Both empty means no key was ever used with it, so a new one may be.
 */
export async function describeStoredEncryption({
  masterKeys,
  dataKeys,
}: Pick<MasterKeyCheckDeps, "masterKeys" | "dataKeys">): Promise<{ kids: string[]; dataKeyCount: number }> {
  const kids = (await masterKeys.list()).map((row) => row.kid);
  const counts = await dataKeys.countByKid();
  return { kids, dataKeyCount: Object.values(counts).reduce((sum, count) => sum + count, 0) };
}
