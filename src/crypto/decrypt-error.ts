/**
 * Why a stored ciphertext did not open:
 * - `malformed`: the blob does not parse (bad encoding, version, kid grammar, length).
 * - `unknown_kid`: the blob names a master key that is not configured.
 * - `auth_failed`: the GCM tag did not verify (wrong key, tampering, or a blob moved to another row).
 * - `missing_data_key`: the owner's data key, which every provider-key blob of theirs was sealed
 *   with, is not stored (a partial restore, a bad migration).
 */
export type DecryptFailureReason = "malformed" | "unknown_kid" | "auth_failed" | "missing_data_key";

/**
 * Which stored blob did not open: the owner's wrapped data key (every provider key of the owner is
 * then unreadable, and re-entering one cannot help), or one provider key sealed with it.
 */
export type DecryptSubject = "data_key" | "provider_key";

/**
 * Thrown for every failure to open a stored blob. The message names only the subject and the
 * reason: never key material, blob bytes or the library's own error text, so it is safe to log.
 */
export class DecryptError extends Error {
  readonly reason: DecryptFailureReason;
  /** Set by the envelope; `undefined` for a bare blob (`aead.ts`), which knows no subject. */
  readonly subject: DecryptSubject | undefined;

  constructor(reason: DecryptFailureReason, subject?: DecryptSubject) {
    super(`Stored ${subject === "data_key" ? "data key" : "ciphertext"} could not be decrypted (${reason})`);
    this.name = "DecryptError";
    this.reason = reason;
    this.subject = subject;
  }
}

/** `error` as a failure of `subject`, when it is a `DecryptError` that does not name one yet. */
export function decryptFailureOf(error: unknown, subject: DecryptSubject): unknown {
  return error instanceof DecryptError && error.subject === undefined ? new DecryptError(error.reason, subject) : error;
}
