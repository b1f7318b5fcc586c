import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject, randomBytes } from "node:crypto";
import { DecryptError } from "./decrypt-error.js";

/**
 * AES-256-GCM blobs with a self-describing, authenticated header:
 *
 *   version(1 = 0x01) | kidLength(1, 1..32) | kid (ASCII [A-Za-z0-9_-]) | nonce(12) | ciphertext | tag(16)
 *
 * The header bytes are the first part of the GCM associated data, so the version and kid cannot
 * be changed without the tag failing; the caller's context follows them.
 */
export const BLOB_VERSION = 0x01;
export const NONCE_LENGTH = 12;
export const TAG_LENGTH = 16;
export const KEY_LENGTH = 32;
export const MAX_KID_LENGTH = 32;

const KID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

export type SealOptions = {
  /** Names the key that sealed the blob, so the opener picks it without trial decryption. */
  kid: string;
  /** Associated data binding the blob to where it is stored; not secret, not stored in the blob. */
  context: readonly string[];
};

type ParsedBlob = {
  header: Buffer;
  kid: string;
  nonce: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
};

/** True when `kid` may appear in a blob header. */
export function isValidKid(kid: string): boolean {
  return KID_PATTERN.test(kid);
}

/**
 * Length-prefixed encoding (uint32 BE byte length + UTF-8 bytes per part), so part boundaries
 * are unambiguous: ("ab", "c") and ("a", "bc") encode differently.
 */
export function encodeContext(parts: readonly string[]): Buffer {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const bytes = Buffer.from(part, "utf8");
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length, 0);
    chunks.push(length, bytes);
  }
  return Buffer.concat(chunks);
}

function assertKey(key: Buffer): void {
  // A wrong-length key is a programming error, not a property of stored data.
  if (key.length !== KEY_LENGTH) throw new RangeError(`AES-256-GCM key must be ${KEY_LENGTH} bytes`);
}

function encodeHeader(kid: string): Buffer {
  const kidBytes = Buffer.from(kid, "ascii");
  return Buffer.concat([Buffer.from([BLOB_VERSION, kidBytes.length]), kidBytes]);
}

/** Seals `plaintext` under `key` with a fresh random 96-bit nonce. */
export function sealBlob(key: Buffer, plaintext: Buffer, options: SealOptions): Buffer {
  assertKey(key);
  if (!isValidKid(options.kid)) throw new RangeError("kid must be 1-32 characters of [A-Za-z0-9_-]");
  const header = encodeHeader(options.kid);
  const nonce = randomBytes(NONCE_LENGTH);
  const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_LENGTH });
  cipher.setAAD(Buffer.concat([header, encodeContext(options.context)]));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const tag = cipher.getAuthTag();
  return Buffer.concat([header, nonce, ciphertext, tag]);
}

/** Strict parse: anything that is not exactly the format above is `malformed`. */
function parseBlob(blob: Buffer): ParsedBlob {
  if (blob.length < 2 || blob[0] !== BLOB_VERSION) throw new DecryptError("malformed");
  const kidLength = blob[1] ?? 0;
  if (kidLength < 1 || kidLength > MAX_KID_LENGTH) throw new DecryptError("malformed");
  const headerLength = 2 + kidLength;
  if (blob.length < headerLength + NONCE_LENGTH + TAG_LENGTH) throw new DecryptError("malformed");
  const header = blob.subarray(0, headerLength);
  // latin1 maps each byte to one code unit, so a non-ASCII byte fails the pattern instead of
  // being replaced by U+FFFD.
  const kid = header.subarray(2).toString("latin1");
  if (!isValidKid(kid)) throw new DecryptError("malformed");
  const nonceEnd = headerLength + NONCE_LENGTH;
  const tagStart = blob.length - TAG_LENGTH;
  return {
    header,
    kid,
    nonce: blob.subarray(headerLength, nonceEnd),
    ciphertext: blob.subarray(nonceEnd, tagStart),
    tag: blob.subarray(tagStart),
  };
}

/** The kid named in the blob's header (used to pick the opening key). Throws `DecryptError`. */
export function readBlobKid(blob: Buffer): string {
  return parseBlob(blob).kid;
}

/**
 * Opens a blob sealed by `sealBlob` with the same key and context. Every failure (parse, tag,
 * context mismatch) throws `DecryptError`; the library's error text is never passed on.
 */
export function openBlob(key: Buffer, blob: Buffer, context: readonly string[]): Buffer {
  assertKey(key);
  const parsed = parseBlob(blob);
  return decipher(key, parsed, Buffer.concat([parsed.header, encodeContext(context)]));
}

/**
 * Prepares opening the same blob many times: the blob is parsed, its associated data built and
 * the key imported (a `KeyObject`, held outside the JavaScript heap) once; each call then only
 * runs the cipher. `key` may be wiped as soon as this returns. Throws `DecryptError` for a
 * malformed blob here, and for a failed tag on each call.
 */
export function prepareBlobOpening(key: Buffer, blob: Buffer, context: readonly string[]): () => Buffer {
  assertKey(key);
  const parsed = parseBlob(blob);
  const aad = Buffer.concat([parsed.header, encodeContext(context)]);
  const keyObject = createSecretKey(key);
  return () => decipher(keyObject, parsed, aad);
}

function decipher(key: Buffer | KeyObject, parsed: ParsedBlob, aad: Buffer): Buffer {
  // Both checks are needed on Node 20: without `authTagLength` a 4-byte tag is accepted.
  if (parsed.nonce.length !== NONCE_LENGTH || parsed.tag.length !== TAG_LENGTH) {
    throw new DecryptError("malformed");
  }
  let plaintext: Buffer | undefined;
  try {
    const gcm = createDecipheriv("aes-256-gcm", key, parsed.nonce, { authTagLength: TAG_LENGTH });
    gcm.setAAD(aad);
    gcm.setAuthTag(parsed.tag);
    plaintext = gcm.update(parsed.ciphertext);
    // GCM is a stream mode: `final` only checks the tag and returns no bytes, so the one buffer
    // `update` made is the whole plaintext (no copy of it left behind in a concatenation).
    if (gcm.final().length !== 0) throw new Error("unexpected bytes from final()");
    return plaintext;
  } catch {
    // `update` hands out plaintext before the tag is checked: none of it outlives a failure.
    plaintext?.fill(0);
    throw new DecryptError("auth_failed");
  }
}
