import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  createMasterKeyring,
  generateMasterKeyHex,
  masterKeyId,
  masterKeyVerifier,
  parseMasterKeyHex,
} from "./master-keys.js";

const hexA = "a".repeat(64);
const hexB = "0123456789abcdef".repeat(4);
const hexC = "f".repeat(63) + "0";

function errorMessage(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  throw new Error("expected a throw");
}

describe("generateMasterKeyHex", () => {
  it("gives 64 lowercase hex characters that parse", () => {
    const first = generateMasterKeyHex();
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    expect(parseMasterKeyHex(first).length).toBe(32);
    expect(generateMasterKeyHex()).not.toBe(first);
  });
});

describe("parseMasterKeyHex", () => {
  it("accepts exactly 64 hex characters", () => {
    expect(parseMasterKeyHex(hexB).toString("hex")).toBe(hexB);
    expect(parseMasterKeyHex(hexB.toUpperCase()).toString("hex")).toBe(hexB);
  });

  it.each([
    ["63 characters", "b".repeat(63)],
    ["65 characters", "b".repeat(65)],
    ["non-hex", "g".repeat(64)],
    ["base64 of 32 bytes", Buffer.alloc(32, 9).toString("base64")],
    ["padded with whitespace", ` ${"b".repeat(62)} `],
    ["empty", ""],
  ])("rejects %s without quoting the input", (_label, input) => {
    const message = errorMessage(() => parseMasterKeyHex(input));
    expect(message).toMatch(/64 hex characters/);
    if (input !== "") {
      expect(message).not.toContain(input);
      expect(message).not.toContain(input.trim());
      expect(message).not.toContain(input.slice(0, 8));
    }
  });
});

describe("masterKeyId / masterKeyVerifier", () => {
  it("are the documented HMACs", () => {
    const key = parseMasterKeyHex(hexB);
    const expectedId = createHmac("sha256", key).update("keyport master-key id v1").digest("hex").slice(0, 16);
    expect(masterKeyId(key)).toBe(`mk_${expectedId}`);
    expect(masterKeyVerifier(key)).toBe(
      createHmac("sha256", key).update("keyport master-key verifier v1").digest("hex"),
    );
  });

  it("differ between keys and do not contain the key", () => {
    const a = parseMasterKeyHex(hexA);
    const b = parseMasterKeyHex(hexB);
    expect(masterKeyId(a)).toMatch(/^mk_[0-9a-f]{16}$/);
    expect(masterKeyId(a)).not.toBe(masterKeyId(b));
    expect(masterKeyVerifier(a)).not.toBe(masterKeyVerifier(b));
    expect(masterKeyVerifier(b)).not.toContain(hexB);
    expect(masterKeyVerifier(b).startsWith(masterKeyId(b).slice(3))).toBe(false);
  });
});

describe("createMasterKeyring", () => {
  it("makes the current key current and finds every key by kid", () => {
    const ring = createMasterKeyring({ current: hexA, previous: [hexB, hexC] });
    const idA = masterKeyId(parseMasterKeyHex(hexA));
    const idB = masterKeyId(parseMasterKeyHex(hexB));
    const idC = masterKeyId(parseMasterKeyHex(hexC));
    expect(ring.current.kid).toBe(idA);
    expect(ring.current.key.toString("hex")).toBe(hexA);
    expect(ring.kids).toEqual([idA, idB, idC]);
    expect(ring.find(idB)?.toString("hex")).toBe(hexB);
    expect(ring.find("mk_0000000000000000")).toBeUndefined();
    expect(ring.find("toString")).toBeUndefined();
  });

  it("collapses duplicates and keeps the current key current", () => {
    const ring = createMasterKeyring({ current: hexA, previous: [hexB, hexA, hexB.toUpperCase()] });
    expect(ring.kids).toHaveLength(2);
    expect(ring.current.kid).toBe(masterKeyId(parseMasterKeyHex(hexA)));
    expect(ring.kids[0]).toBe(ring.current.kid);
  });

  it("lists a verifier per key", () => {
    const ring = createMasterKeyring({ current: hexA, previous: [hexB] });
    expect(ring.verifiers()).toEqual([
      { kid: masterKeyId(parseMasterKeyHex(hexA)), verifier: masterKeyVerifier(parseMasterKeyHex(hexA)) },
      { kid: masterKeyId(parseMasterKeyHex(hexB)), verifier: masterKeyVerifier(parseMasterKeyHex(hexB)) },
    ]);
  });

  it("names which entry is invalid without quoting it", () => {
    const bad = "z".repeat(64);
    const message = errorMessage(() => createMasterKeyring({ current: hexA, previous: [hexB, bad] }));
    expect(message).toMatch(/previous master key #2/);
    expect(message).not.toContain(bad);
    expect(errorMessage(() => createMasterKeyring({ current: "abc", previous: [] }))).toMatch(/current master key/);
  });
});
