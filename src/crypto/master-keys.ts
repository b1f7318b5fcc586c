import { createHmac, randomBytes } from "node:crypto";
import { KEY_LENGTH } from "./aead.js";

const HEX_64 = /^[0-9a-fA-F]{64}$/;
const ID_LABEL = "keyport master-key id v1";
const VERIFIER_LABEL = "keyport master-key verifier v1";

/** The configured master keys: `current` seals, every key (current and previous) may open. */
export type MasterKeyring = {
  readonly current: { kid: string; key: Buffer };
  /** The master key with this id, if configured. */
  find(kid: string): Buffer | undefined;
  /** Every configured kid, current first. */
  readonly kids: readonly string[];
  /** Verifiers for every configured key, to compare with the ones stored in the database. */
  verifiers(): { kid: string; verifier: string }[];
};

/** A new master key: 32 random bytes as 64 lowercase hex characters (`keyport gen-encryption-key`). */
export function generateMasterKeyHex(): string {
  return randomBytes(KEY_LENGTH).toString("hex");
}

/**
 * Decodes a master key given as exactly 64 hex characters. No other encoding is guessed. The
 * error message never quotes the value.
 */
export function parseMasterKeyHex(hex: string): Buffer {
  if (!HEX_64.test(hex)) {
    throw new Error(
      `Master key must be exactly 64 hex characters (32 bytes); got ${hex.length} characters` +
        (/^[0-9a-fA-F]*$/.test(hex) ? "" : " including non-hex characters"),
    );
  }
  return Buffer.from(hex, "hex");
}

/** Public fingerprint of a master key (`mk_` + 16 hex), safe to print and log. */
export function masterKeyId(key: Buffer): string {
  return `mk_${createHmac("sha256", key).update(ID_LABEL).digest("hex").slice(0, 16)}`;
}

/**
 * Keyed hash stored in the database so start-up can tell a wrong `ENCRYPTION_KEY` from a right
 * one. A separate label from the id keeps the printed id and the stored value independent.
 */
export function masterKeyVerifier(key: Buffer): string {
  return createHmac("sha256", key).update(VERIFIER_LABEL).digest("hex");
}

/**
 * Builds the keyring from hex strings. The same key listed twice collapses into one entry; when
 * the current key also appears in `previous`, it stays current.
 */
export function createMasterKeyring(input: { current: string; previous: readonly string[] }): MasterKeyring {
  const byKid = new Map<string, Buffer>();
  const add = (hex: string, label: string): string => {
    let key: Buffer;
    try {
      key = parseMasterKeyHex(hex);
    } catch (error) {
      throw new Error(`${label}: ${error instanceof Error ? error.message : "invalid master key"}`);
    }
    const kid = masterKeyId(key);
    if (!byKid.has(kid)) byKid.set(kid, key);
    return kid;
  };

  const currentKid = add(input.current, "current master key");
  input.previous.forEach((hex, index) => add(hex, `previous master key #${index + 1}`));
  const currentKey = byKid.get(currentKid);
  if (currentKey === undefined) throw new Error("current master key missing from keyring");
  const kids = Object.freeze([...byKid.keys()]);

  return {
    current: Object.freeze({ kid: currentKid, key: currentKey }),
    find: (kid) => byKid.get(kid),
    kids,
    verifiers: () => [...byKid].map(([kid, key]) => ({ kid, verifier: masterKeyVerifier(key) })),
  };
}
