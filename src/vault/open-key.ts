import type { Envelope } from "../crypto/envelope.js";
import { type Redacted, redacted } from "../lib/redacted.js";
import type { ProviderKeyRow } from "../store/ports.js";

/**
 * Opens a stored provider key with its owner's wrapped data key. The data key is wiped as soon as
 * the secret is out; the secret itself is returned wrapped in `Redacted` and lives as long as the
 * caller's call. Throws `DecryptError` when anything does not open.
 */
export function openProviderKey(
  envelope: Pick<Envelope, "unwrapDataKey" | "openSecret">,
  row: Pick<ProviderKeyRow, "id" | "owner" | "provider" | "ciphertext">,
  wrappedDataKey: string,
): Redacted<string> {
  const dataKey = envelope.unwrapDataKey(row.owner, wrappedDataKey);
  try {
    return redacted(envelope.openSecret(dataKey, row.ciphertext, { owner: row.owner, provider: row.provider, keyId: row.id }));
  } finally {
    dataKey.fill(0);
  }
}
