/**
 * What makes an `ENCRYPTION_KEY` acceptable. Configuration validation is the one place that
 * decides (the keyring only re-checks the format), so a bad key stops every command at start with
 * all other configuration problems. No message quotes the value.
 */

const HEX_64 = /^[0-9a-fA-F]{64}$/;
/** 32 bytes in base64 (44 characters with its `=`) or unpadded base64url (43). */
const BASE64_32_BYTES = /^(?:[A-Za-z0-9+/]{43}=|[A-Za-z0-9_-]{43})$/;
/** A random 32-byte key has about 30 distinct byte values; fewer than 16 is all but impossible. */
export const MIN_DISTINCT_KEY_BYTES = 16;

const FORMAT = "must be exactly 64 hex characters (32 bytes); generate one with `keyport gen-encryption-key`";
const FROM_BASE64 =
  "it looks like 32 bytes in base64: the same key in hex is printed by " +
  `\`node -e 'console.log(Buffer.from(process.env.ENCRYPTION_KEY, "base64").toString("hex"))'\` ` +
  "or `printf %s \"$ENCRYPTION_KEY\" | openssl base64 -d -A | od -An -tx1 -v | tr -d ' \\n'`";

export function isMasterKeyHex(value: string): boolean {
  return HEX_64.test(value);
}

/** Why `value` is not a master key in the one accepted encoding (hex), or `undefined`. */
export function masterKeyFormatProblem(value: string): string | undefined {
  if (HEX_64.test(value)) return undefined;
  return BASE64_32_BYTES.test(value) ? `${FORMAT}; ${FROM_BASE64}` : FORMAT;
}

/**
 * True for a key with fewer than 16 distinct byte values: all zeros, one repeated byte, a short
 * repeated pattern. Such a key was typed, not generated, and is guessed as easily as it was typed.
 */
export function isTrivialMasterKey(hex: string): boolean {
  return new Set(Buffer.from(hex, "hex")).size < MIN_DISTINCT_KEY_BYTES;
}

export const TRIVIAL_KEY_PROBLEM =
  "ENCRYPTION_KEY is not a random key (fewer than 16 distinct byte values, such as all zeros or a repeated pattern): " +
  "generate one with `keyport gen-encryption-key`. If data is already encrypted with it, set the new key as ENCRYPTION_KEY " +
  "and this one as ENCRYPTION_KEY_PREVIOUS, then run `keyport rotate-encryption-key`";
