/**
 * Why a stored ciphertext did not open:
 * - `malformed`: the blob does not parse (bad encoding, version, kid grammar, length).
 * - `unknown_kid`: the blob names a master key that is not configured.
 * - `auth_failed`: the GCM tag did not verify (wrong key, tampering, or a blob moved to another row).
 */
export type DecryptFailureReason = "malformed" | "unknown_kid" | "auth_failed";

/**
 * Thrown for every failure to open a stored blob. The message names only the reason: never key
 * material, blob bytes or the library's own error text, so it is safe to log.
 */
export class DecryptError extends Error {
  readonly reason: DecryptFailureReason;

  constructor(reason: DecryptFailureReason) {
    super(`Stored ciphertext could not be decrypted (${reason})`);
    this.name = "DecryptError";
    this.reason = reason;
  }
}
