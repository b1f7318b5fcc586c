import { createHmac, hkdfSync, randomBytes } from "node:crypto";
import { KEY_LENGTH, openBlob, prepareBlobOpening, readBlobKid, sealBlob } from "./aead.js";
import { DecryptError, decryptFailureOf } from "./decrypt-error.js";
import type { MasterKeyring } from "./master-keys.js";

/** Kid written into provider-key blobs; the data key itself is chosen by the owner, not the kid. */
export const DATA_KEY_KID = "dk1";

const DATA_KEY_CONTEXT = "keyport/data-key/v1";
const PROVIDER_KEY_CONTEXT = "keyport/provider-key/v1";
const FINGERPRINT_INFO = "keyport fingerprint v1";
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Where a provider-key blob is stored; all three are bound into its associated data. */
export type SecretBinding = { owner: string; provider: string; keyId: string };

/** A data key wrapped by a master key, as stored in the database. */
export type WrappedDataKey = { kid: string; wrapped: string };

/** Strict base64url: the text must be exactly what encoding the decoded bytes gives back. */
function decodeBase64url(text: string): Buffer {
  if (!BASE64URL.test(text)) throw new DecryptError("malformed");
  const bytes = Buffer.from(text, "base64url");
  if (bytes.toString("base64url") !== text) throw new DecryptError("malformed");
  return bytes;
}

/** A provider-key blob, decoded and checked to be one (its kid is the data-key kid). */
function providerKeyBlob(sealed: string): Buffer {
  const blob = decodeBase64url(sealed);
  if (readBlobKid(blob) !== DATA_KEY_KID) throw new DecryptError("unknown_kid");
  return blob;
}

function providerKeyContext(binding: SecretBinding): string[] {
  return [PROVIDER_KEY_CONTEXT, binding.owner, binding.provider, binding.keyId];
}

function assertDataKey(dataKey: Buffer): void {
  if (dataKey.length !== KEY_LENGTH) throw new RangeError(`data key must be ${KEY_LENGTH} bytes`);
}

/**
 * Envelope encryption: per-owner data keys wrapped by the master keyring, and provider keys
 * sealed with the owner's data key and bound to their row.
 */
export function createEnvelope(keyring: MasterKeyring) {
  // Seals per kid since start: the random-nonce budget (about 2^32 per key) is watched from here.
  const sealsByKid = new Map<string, number>();

  const seal = (key: Buffer, plaintext: Buffer, kid: string, context: readonly string[]): Buffer => {
    const blob = sealBlob(key, plaintext, { kid, context });
    sealsByKid.set(kid, (sealsByKid.get(kid) ?? 0) + 1);
    return blob;
  };

  const wrap = (owner: string, dataKey: Buffer): WrappedDataKey => {
    const { kid, key } = keyring.current;
    const blob = seal(key, dataKey, kid, [DATA_KEY_CONTEXT, owner]);
    return { kid, wrapped: blob.toString("base64url") };
  };

  const unwrapDataKey = (owner: string, wrapped: string): Buffer => {
    try {
      const blob = decodeBase64url(wrapped);
      // The kid picks the key. Trying every configured key would be unsafe: GCM is not
      // key-committing, so one blob can be made to open under two keys.
      const masterKey = keyring.find(readBlobKid(blob));
      if (masterKey === undefined) throw new DecryptError("unknown_kid");
      const dataKey = openBlob(masterKey, blob, [DATA_KEY_CONTEXT, owner]);
      if (dataKey.length !== KEY_LENGTH) throw new DecryptError("malformed");
      return dataKey;
    } catch (error) {
      throw decryptFailureOf(error, "data_key");
    }
  };

  return {
    /** A fresh data key for `owner`, wrapped with the current master key. */
    createDataKey(owner: string): WrappedDataKey & { dataKey: Buffer } {
      const dataKey = randomBytes(KEY_LENGTH);
      return { ...wrap(owner, dataKey), dataKey };
    },

    /** Opens an owner's wrapped data key with the master key its blob names. */
    unwrapDataKey,

    /** Re-wraps an owner's data key with the current master key (fresh nonce); the data key is unchanged. */
    rewrapDataKey(owner: string, wrapped: string): WrappedDataKey {
      return wrap(owner, unwrapDataKey(owner, wrapped));
    },

    /** Seals a provider key with the owner's data key, bound to owner, provider and key id. */
    sealSecret(dataKey: Buffer, secret: string, binding: SecretBinding): string {
      assertDataKey(dataKey);
      return seal(dataKey, Buffer.from(secret, "utf8"), DATA_KEY_KID, providerKeyContext(binding)).toString("base64url");
    },

    /** Opens a provider key; a blob moved to another row, tampered or truncated throws `DecryptError`. */
    openSecret(dataKey: Buffer, sealed: string, binding: SecretBinding): string {
      assertDataKey(dataKey);
      try {
        return openBlob(dataKey, providerKeyBlob(sealed), providerKeyContext(binding)).toString("utf8");
      } catch (error) {
        throw decryptFailureOf(error, "provider_key");
      }
    },

    /**
     * Prepares opening one stored provider key many times (the gateway's cached key record): the
     * first `open()` unwraps the data key with the master key and keeps it only as an imported
     * `KeyObject` for this blob; later calls run just the cipher. Each `open()` returns a fresh
     * plaintext that lives as long as its caller holds it. A failure throws `DecryptError` (naming
     * the data key or the provider key as its subject) and is not remembered: the next call tries
     * again.
     */
    prepareSecretOpening(wrappedDataKey: string, sealed: string, binding: SecretBinding): () => string {
      let open: (() => Buffer) | undefined;
      const prepare = (): (() => Buffer) => {
        const dataKey = unwrapDataKey(binding.owner, wrappedDataKey);
        try {
          return prepareBlobOpening(dataKey, providerKeyBlob(sealed), providerKeyContext(binding));
        } catch (error) {
          throw decryptFailureOf(error, "provider_key");
        } finally {
          dataKey.fill(0);
        }
      };
      return () => {
        open ??= prepare();
        let plaintext: Buffer;
        try {
          plaintext = open();
        } catch (error) {
          throw decryptFailureOf(error, "provider_key");
        }
        try {
          return plaintext.toString("utf8");
        } finally {
          // The string is what the call uses; the bytes it was made from are wiped at once.
          plaintext.fill(0);
        }
      };
    },

    /**
     * Owner-scoped fingerprint for duplicate detection: HMAC-SHA256 under a subkey derived from
     * the data key, so it survives master-key rotation and means nothing across owners.
     */
    fingerprintSecret(dataKey: Buffer, provider: string, secret: string): string {
      assertDataKey(dataKey);
      const subkey = Buffer.from(hkdfSync("sha256", dataKey, Buffer.alloc(0), FINGERPRINT_INFO, KEY_LENGTH));
      return createHmac("sha256", subkey).update(`${provider}\u0000${secret}`, "utf8").digest("hex");
    },

    /** Seals per kid since this process started (nonce budget, SECURITY §1.6). */
    encryptionCounts(): Record<string, number> {
      return Object.fromEntries(sealsByKid);
    },
  };
}

export type Envelope = ReturnType<typeof createEnvelope>;
