import type { Envelope } from "../crypto/envelope.js";
import { DecryptError } from "../crypto/decrypt-error.js";
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
 *
 * `wrappedDataKey` is `undefined` when the owner's data-key row is gone although this key was
 * sealed with it: every open then fails closed with `missing_data_key`, so the key is reported
 * `undecryptable` and never read as "no key" (which would move the owner to the platform key).
 */
export function createKeyOpener(
  envelope: Pick<Envelope, "prepareSecretOpening">,
  row: Pick<ProviderKeyRow, "id" | "owner" | "provider" | "ciphertext">,
  wrappedDataKey: string | undefined,
): KeyOpener {
  if (wrappedDataKey === undefined) {
    return () => {
      throw new DecryptError("missing_data_key", "data_key");
    };
  }
  const open = envelope.prepareSecretOpening(wrappedDataKey, row.ciphertext, { owner: row.owner, provider: row.provider, keyId: row.id });
  return () => redacted(open());
}
