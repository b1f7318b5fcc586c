import type { Envelope } from "../crypto/envelope.js";
import { type Redacted, redacted } from "../lib/redacted.js";
import type { ProviderKeyRow } from "../store/ports.js";

/** Opens one stored provider key on demand; each call returns a fresh plaintext for one call's use. */
export type KeyOpener = () => Redacted<string>;

/**
 * An opener for a stored provider key and its owner's wrapped data key, made once per cached key
 * record. The data key is unwrapped on the first open and kept (as an imported key, outside the
 * JavaScript heap) as long as the opener lives; the provider key's plaintext is never kept: each
 * open decrypts it again and hands it over wrapped in `Redacted`. Throws `DecryptError` when
 * anything does not open.
 */
export function createKeyOpener(
  envelope: Pick<Envelope, "prepareSecretOpening">,
  row: Pick<ProviderKeyRow, "id" | "owner" | "provider" | "ciphertext">,
  wrappedDataKey: string,
): KeyOpener {
  const open = envelope.prepareSecretOpening(wrappedDataKey, row.ciphertext, { owner: row.owner, provider: row.provider, keyId: row.id });
  return () => redacted(open());
}
