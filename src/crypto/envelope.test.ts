import { describe, expect, it } from "vitest";
import { openBlob, readBlobKid, sealBlob } from "./aead.js";
import { DecryptError, type DecryptFailureReason } from "./decrypt-error.js";
import { createEnvelope } from "./envelope.js";
import { createMasterKeyring, masterKeyId, parseMasterKeyHex } from "./master-keys.js";

const hexOld = "1".repeat(64);
const hexNew = "2".repeat(64);
const hexOther = "3".repeat(64);
const owner = "user:alice";
const binding = { owner, provider: "openai", keyId: "key_01" };
const secret = "sk-proj-canaryCANARY0123456789";

function expectDecryptError(action: () => unknown, reason?: DecryptFailureReason): DecryptError {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(DecryptError);
  const error = caught as DecryptError;
  if (reason !== undefined) expect(error.reason).toBe(reason);
  return error;
}

const fromBlob = (wrapped: string) => Buffer.from(wrapped, "base64url");

describe("data keys", () => {
  it("create then unwrap returns the same 32-byte key", () => {
    const envelope = createEnvelope(createMasterKeyring({ current: hexNew, previous: [] }));
    const created = envelope.createDataKey(owner);
    expect(created.dataKey.length).toBe(32);
    expect(created.kid).toBe(masterKeyId(parseMasterKeyHex(hexNew)));
    expect(readBlobKid(fromBlob(created.wrapped))).toBe(created.kid);
    expect(created.wrapped).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(envelope.unwrapDataKey(owner, created.wrapped).equals(created.dataKey)).toBe(true);
    expect(envelope.createDataKey(owner).dataKey.equals(created.dataKey)).toBe(false);
  });

  it("is bound to its owner", () => {
    const envelope = createEnvelope(createMasterKeyring({ current: hexNew, previous: [] }));
    const created = envelope.createDataKey(owner);
    const error = expectDecryptError(() => envelope.unwrapDataKey("user:bob", created.wrapped), "auth_failed");
    // Named as a data-key failure: every provider key of the owner is then unreadable.
    expect(error.subject).toBe("data_key");
    expect(error.message).toBe("Stored data key could not be decrypted (auth_failed)");
  });

  it("reports an unconfigured master key as unknown_kid", () => {
    const created = createEnvelope(createMasterKeyring({ current: hexOther, previous: [] })).createDataKey(owner);
    const envelope = createEnvelope(createMasterKeyring({ current: hexNew, previous: [hexOld] }));
    expectDecryptError(() => envelope.unwrapDataKey(owner, created.wrapped), "unknown_kid");
  });

  it("reports the wrong master key under a matching kid as auth_failed", () => {
    const ring = createMasterKeyring({ current: hexNew, previous: [] });
    const created = createEnvelope(ring).createDataKey(owner);
    expectDecryptError(() => openBlob(parseMasterKeyHex(hexOther), fromBlob(created.wrapped), ["keyport/data-key/v1", owner]), "auth_failed");
  });

  it("fails when the header kid is changed to another configured kid", () => {
    const ring = createMasterKeyring({ current: hexNew, previous: [hexOld] });
    const envelope = createEnvelope(ring);
    const blob = fromBlob(envelope.createDataKey(owner).wrapped);
    const oldKid = masterKeyId(parseMasterKeyHex(hexOld));
    expect(blob[1]).toBe(oldKid.length);
    const relabelled = Buffer.from(blob);
    relabelled.write(oldKid, 2, "ascii");
    expect(readBlobKid(relabelled)).toBe(oldKid);
    expectDecryptError(() => envelope.unwrapDataKey(owner, relabelled.toString("base64url")), "auth_failed");
  });

  it("rejects a wrapped blob holding something other than a 32-byte key", () => {
    const ring = createMasterKeyring({ current: hexNew, previous: [] });
    const blob = sealBlob(ring.current.key, Buffer.alloc(16), { kid: ring.current.kid, context: ["keyport/data-key/v1", owner] });
    expectDecryptError(() => createEnvelope(ring).unwrapDataKey(owner, blob.toString("base64url")), "malformed");
  });

  it("keeps old data keys readable after rotation, and rewrap moves them to the current kid", () => {
    const before = createEnvelope(createMasterKeyring({ current: hexOld, previous: [] }));
    const created = before.createDataKey(owner);
    const sealed = before.sealSecret(created.dataKey, secret, binding);

    const after = createEnvelope(createMasterKeyring({ current: hexNew, previous: [hexOld] }));
    expect(after.unwrapDataKey(owner, created.wrapped).equals(created.dataKey)).toBe(true);

    const rewrapped = after.rewrapDataKey(owner, created.wrapped);
    const newKid = masterKeyId(parseMasterKeyHex(hexNew));
    expect(rewrapped.kid).toBe(newKid);
    expect(readBlobKid(fromBlob(rewrapped.wrapped))).toBe(newKid);
    expect(rewrapped.wrapped).not.toBe(created.wrapped);
    const dataKey = after.unwrapDataKey(owner, rewrapped.wrapped);
    expect(dataKey.equals(created.dataKey)).toBe(true);
    // Provider-key blobs are untouched by master rotation.
    expect(after.openSecret(dataKey, sealed, binding)).toBe(secret);

    // Once the old key is dropped, only the rewrapped copy opens.
    const dropped = createEnvelope(createMasterKeyring({ current: hexNew, previous: [] }));
    expect(dropped.unwrapDataKey(owner, rewrapped.wrapped).equals(created.dataKey)).toBe(true);
    expectDecryptError(() => dropped.unwrapDataKey(owner, created.wrapped), "unknown_kid");
  });

  it("rewrap of an unknown kid or another owner's blob fails", () => {
    const created = createEnvelope(createMasterKeyring({ current: hexOther, previous: [] })).createDataKey(owner);
    const envelope = createEnvelope(createMasterKeyring({ current: hexNew, previous: [] }));
    expectDecryptError(() => envelope.rewrapDataKey(owner, created.wrapped), "unknown_kid");
    const own = envelope.createDataKey(owner);
    expectDecryptError(() => envelope.rewrapDataKey("user:bob", own.wrapped), "auth_failed");
  });
});

describe("provider-key secrets", () => {
  const envelope = createEnvelope(createMasterKeyring({ current: hexNew, previous: [] }));
  const { dataKey } = envelope.createDataKey(owner);

  it("round-trip, including non-ASCII text", () => {
    expect(envelope.openSecret(dataKey, envelope.sealSecret(dataKey, secret, binding), binding)).toBe(secret);
    expect(envelope.openSecret(dataKey, envelope.sealSecret(dataKey, "ключ🔑", binding), binding)).toBe("ключ🔑");
    const sealed = envelope.sealSecret(dataKey, secret, binding);
    expect(readBlobKid(fromBlob(sealed))).toBe("dk1");
    expect(sealed).not.toContain(secret);
    expect(envelope.sealSecret(dataKey, secret, binding)).not.toBe(sealed);
  });

  it.each([
    ["owner", { ...binding, owner: "user:bob" }],
    ["provider", { ...binding, provider: "anthropic" }],
    ["key id", { ...binding, keyId: "key_02" }],
    ["re-split fields", { owner: "user:alic", provider: "eopenai", keyId: "key_01" }],
  ])("fail when moved to another %s", (_label, other) => {
    const sealed = envelope.sealSecret(dataKey, secret, binding);
    expectDecryptError(() => envelope.openSecret(dataKey, sealed, other), "auth_failed");
  });

  it("fail under another owner's data key", () => {
    const sealed = envelope.sealSecret(dataKey, secret, binding);
    const otherDataKey = envelope.createDataKey("user:bob").dataKey;
    expect(expectDecryptError(() => envelope.openSecret(otherDataKey, sealed, binding), "auth_failed").subject).toBe("provider_key");
  });

  it("fail when any byte is flipped or the blob is truncated", () => {
    const blob = fromBlob(envelope.sealSecret(dataKey, "sk-x", binding));
    for (let position = 0; position < blob.length; position += 1) {
      const tampered = Buffer.from(blob);
      tampered[position] = (tampered[position] ?? 0) ^ 0x01;
      expectDecryptError(() => envelope.openSecret(dataKey, tampered.toString("base64url"), binding));
    }
    for (let cut = 1; cut <= 16; cut += 1) {
      const truncated = blob.subarray(0, blob.length - cut).toString("base64url");
      expectDecryptError(() => envelope.openSecret(dataKey, truncated, binding));
    }
  });

  it("reject a blob under another kid, including a master-key blob", () => {
    const ring = createMasterKeyring({ current: hexNew, previous: [] });
    const context = ["keyport/provider-key/v1", binding.owner, binding.provider, binding.keyId];
    const foreign = sealBlob(dataKey, Buffer.from(secret), { kid: "dk2", context }).toString("base64url");
    expectDecryptError(() => envelope.openSecret(dataKey, foreign, binding), "unknown_kid");
    const wrappedKey = envelope.createDataKey(owner).wrapped;
    expectDecryptError(() => envelope.openSecret(ring.current.key, wrappedKey, binding), "unknown_kid");
  });

  it.each([
    ["empty", ""],
    ["standard base64", "+/+/"],
    ["padding", "AAAA="],
    ["whitespace", "AAAA AAAA"],
    ["non-canonical trailing bits", "AB"],
    ["not base64 at all", "%%%"],
  ])("reject invalid base64url (%s) as malformed", (_label, text) => {
    expectDecryptError(() => envelope.openSecret(dataKey, text, binding), "malformed");
    expectDecryptError(() => envelope.unwrapDataKey(owner, text), "malformed");
  });

  it("errors carry no key or blob bytes", () => {
    const sealed = envelope.sealSecret(dataKey, secret, binding);
    const error = expectDecryptError(() => envelope.openSecret(dataKey, sealed, { ...binding, keyId: "key_02" }));
    for (const fragment of [sealed, sealed.slice(0, 12), secret, dataKey.toString("hex"), dataKey.toString("base64url"), hexNew]) {
      expect(error.message).not.toContain(fragment);
    }
    expect(JSON.stringify({ ...error, message: error.message })).not.toContain(sealed.slice(0, 12));
  });
});

describe("prepared secret openings (the gateway's cached key records)", () => {
  const envelope = createEnvelope(createMasterKeyring({ current: hexNew, previous: [] }));
  const created = envelope.createDataKey(owner);
  const sealed = envelope.sealSecret(created.dataKey, secret, binding);

  it("open the secret again and again, each time as openSecret would", () => {
    const open = envelope.prepareSecretOpening(created.wrapped, sealed, binding);
    expect(open()).toBe(secret);
    expect(open()).toBe(secret);
    expect(envelope.openSecret(created.dataKey, sealed, binding)).toBe(secret);
  });

  it.each([
    ["moved to another key id", () => envelope.prepareSecretOpening(created.wrapped, sealed, { ...binding, keyId: "key_02" }), "auth_failed", "provider_key"],
    ["another owner's data key", () => envelope.prepareSecretOpening(envelope.createDataKey(owner).wrapped, sealed, binding), "auth_failed", "provider_key"],
    ["a data key wrapped for another owner", () => envelope.prepareSecretOpening(created.wrapped, sealed, { ...binding, owner: "user:bob" }), "auth_failed", "data_key"],
    ["a master key no longer configured", () => createEnvelope(createMasterKeyring({ current: hexOther, previous: [] })).prepareSecretOpening(created.wrapped, sealed, binding), "unknown_kid", "data_key"],
    ["a blob under another kid", () => envelope.prepareSecretOpening(created.wrapped, created.wrapped, binding), "unknown_kid", "provider_key"],
    ["a truncated blob", () => envelope.prepareSecretOpening(created.wrapped, fromBlob(sealed).subarray(0, 20).toString("base64url"), binding), "malformed", "provider_key"],
  ] as const)("fail on every open, never once only, for %s, naming which blob did not open", (_label, prepare, reason, subject) => {
    const open = prepare();
    expect(expectDecryptError(open, reason).subject).toBe(subject);
    expect(expectDecryptError(open, reason).subject).toBe(subject);
  });

  it("fail on a tampered ciphertext after a good prepare of another blob: each blob has its own opening", () => {
    const tampered = Buffer.from(fromBlob(sealed));
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 0x01;
    const good = envelope.prepareSecretOpening(created.wrapped, sealed, binding);
    const bad = envelope.prepareSecretOpening(created.wrapped, tampered.toString("base64url"), binding);
    expect(good()).toBe(secret);
    expectDecryptError(bad, "auth_failed");
    expect(good()).toBe(secret);
  });
});

describe("fingerprintSecret", () => {
  const envelope = createEnvelope(createMasterKeyring({ current: hexNew, previous: [] }));
  const first = envelope.createDataKey(owner).dataKey;
  const second = envelope.createDataKey("user:bob").dataKey;

  it("is deterministic per data key, provider and secret", () => {
    const print = envelope.fingerprintSecret(first, "openai", secret);
    expect(print).toMatch(/^[0-9a-f]{64}$/);
    expect(envelope.fingerprintSecret(Buffer.from(first), "openai", secret)).toBe(print);
    expect(print).not.toContain(secret);
  });

  it("differs across data keys, providers, secrets and field splits", () => {
    const print = envelope.fingerprintSecret(first, "openai", secret);
    expect(envelope.fingerprintSecret(second, "openai", secret)).not.toBe(print);
    expect(envelope.fingerprintSecret(first, "anthropic", secret)).not.toBe(print);
    expect(envelope.fingerprintSecret(first, "openai", `${secret}x`)).not.toBe(print);
    expect(envelope.fingerprintSecret(first, "open", `ai${secret}`)).not.toBe(print);
  });

  it("survives master-key rotation (depends only on the data key)", () => {
    const created = createEnvelope(createMasterKeyring({ current: hexOld, previous: [] })).createDataKey(owner);
    const rotated = createEnvelope(createMasterKeyring({ current: hexNew, previous: [hexOld] }));
    const rewrapped = rotated.rewrapDataKey(owner, created.wrapped);
    expect(rotated.fingerprintSecret(rotated.unwrapDataKey(owner, rewrapped.wrapped), "openai", secret)).toBe(
      envelope.fingerprintSecret(created.dataKey, "openai", secret),
    );
  });
});

describe("encryptionCounts", () => {
  it("counts seals per kid and is per envelope", () => {
    const ring = createMasterKeyring({ current: hexNew, previous: [hexOld] });
    const envelope = createEnvelope(ring);
    expect(envelope.encryptionCounts()).toEqual({});
    const created = envelope.createDataKey(owner);
    envelope.sealSecret(created.dataKey, secret, binding);
    envelope.sealSecret(created.dataKey, secret, binding);
    envelope.rewrapDataKey(owner, created.wrapped);
    envelope.unwrapDataKey(owner, created.wrapped);
    expect(envelope.encryptionCounts()).toEqual({ [ring.current.kid]: 2, dk1: 2 });
    expect(createEnvelope(ring).encryptionCounts()).toEqual({});
  });
});
