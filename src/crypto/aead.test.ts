import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { encodeContext, NONCE_LENGTH, openBlob, readBlobKid, sealBlob, TAG_LENGTH } from "./aead.js";
import { DecryptError, type DecryptFailureReason } from "./decrypt-error.js";

const key = Buffer.alloc(32, 7);
const context = ["keyport/test/v1", "user:alice"];

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

/** header(2 + kid) | nonce | ciphertext | tag, split back into parts. */
function split(blob: Buffer) {
  const headerLength = 2 + (blob[1] ?? 0);
  return {
    header: blob.subarray(0, headerLength),
    nonce: blob.subarray(headerLength, headerLength + NONCE_LENGTH),
    ciphertext: blob.subarray(headerLength + NONCE_LENGTH, blob.length - TAG_LENGTH),
    tag: blob.subarray(blob.length - TAG_LENGTH),
  };
}

describe("encodeContext", () => {
  it("keeps part boundaries", () => {
    expect(encodeContext(["ab", "c"]).equals(encodeContext(["a", "bc"]))).toBe(false);
    expect(encodeContext(["a"]).equals(encodeContext(["a", ""]))).toBe(false);
    expect(encodeContext(["é"]).toString("hex")).toBe("00000002c3a9");
  });
});

describe("sealBlob / openBlob", () => {
  it("round-trips, including empty plaintext", () => {
    for (const plaintext of [Buffer.from("sk-test-123"), Buffer.alloc(0), randomBytes(1000)]) {
      const blob = sealBlob(key, plaintext, { kid: "k1", context });
      expect(openBlob(key, blob, context).equals(plaintext)).toBe(true);
    }
  });

  it("writes the documented layout", () => {
    const blob = sealBlob(key, Buffer.from("hello"), { kid: "mk_abc", context });
    expect(blob[0]).toBe(0x01);
    expect(blob[1]).toBe(6);
    expect(blob.subarray(2, 8).toString("ascii")).toBe("mk_abc");
    expect(blob.length).toBe(2 + 6 + 12 + 5 + 16);
    expect(readBlobKid(blob)).toBe("mk_abc");
  });

  it("uses a fresh nonce per seal", () => {
    const first = sealBlob(key, Buffer.from("same"), { kid: "k1", context });
    const second = sealBlob(key, Buffer.from("same"), { kid: "k1", context });
    expect(split(first).nonce.equals(split(second).nonce)).toBe(false);
  });

  it("rejects bad keys and kids when sealing", () => {
    expect(() => sealBlob(Buffer.alloc(16), Buffer.from("x"), { kid: "k1", context })).toThrow(RangeError);
    for (const kid of ["", "a".repeat(33), "k 1", "k/1", "ké"]) {
      expect(() => sealBlob(key, Buffer.from("x"), { kid, context })).toThrow(RangeError);
    }
    expect(() => sealBlob(key, Buffer.from("x"), { kid: "a".repeat(32), context })).not.toThrow();
  });

  it("fails with another context, including a re-split one", () => {
    const blob = sealBlob(key, Buffer.from("secret"), { kid: "k1", context: ["ab", "c"] });
    expectDecryptError(() => openBlob(key, blob, ["a", "bc"]), "auth_failed");
    expectDecryptError(() => openBlob(key, blob, ["ab", "c", ""]), "auth_failed");
    expectDecryptError(() => openBlob(key, blob, []), "auth_failed");
    expect(openBlob(key, blob, ["ab", "c"]).toString()).toBe("secret");
  });

  it("fails with the wrong key as auth_failed", () => {
    const blob = sealBlob(key, Buffer.from("secret"), { kid: "k1", context });
    expectDecryptError(() => openBlob(Buffer.alloc(32, 8), blob, context), "auth_failed");
  });

  it("fails when any single byte is flipped", () => {
    const blob = sealBlob(key, Buffer.from("abc"), { kid: "k1", context });
    for (let position = 0; position < blob.length; position += 1) {
      for (const mask of [0x01, 0x80]) {
        const tampered = Buffer.from(blob);
        tampered[position] = (tampered[position] ?? 0) ^ mask;
        expectDecryptError(() => openBlob(key, tampered, context));
      }
    }
  });

  it("fails when truncated by 1..16 bytes, and when extended", () => {
    const blob = sealBlob(key, Buffer.from("a longer plaintext here"), { kid: "k1", context });
    for (let cut = 1; cut <= 16; cut += 1) {
      expectDecryptError(() => openBlob(key, blob.subarray(0, blob.length - cut), context));
    }
    expectDecryptError(() => openBlob(key, Buffer.concat([blob, Buffer.from([0])]), context));
  });

  it("rejects a blob rebuilt with an 11-byte nonce", () => {
    const blob = sealBlob(key, Buffer.from("abc"), { kid: "k1", context });
    const parts = split(blob);
    const rebuilt = Buffer.concat([parts.header, parts.nonce.subarray(0, 11), parts.ciphertext, parts.tag]);
    expectDecryptError(() => openBlob(key, rebuilt, context));
  });

  it("rejects a 4-byte tag (Node 20 accepts one unless told otherwise)", () => {
    // A genuine GCM blob whose tag is only 4 bytes long.
    const header = Buffer.from([0x01, 2, ...Buffer.from("k1")]);
    const plaintext = Buffer.from("forged-plaintext");
    const nonce = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: 4 });
    cipher.setAAD(Buffer.concat([header, encodeContext(context)]));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const shortTag = cipher.getAuthTag();
    expect(shortTag.length).toBe(4);
    const blob = Buffer.concat([header, nonce, ciphertext, shortTag]);
    if (Number(process.versions.node.split(".")[0]) < 23) {
      // The forgery is real: a decipher without `authTagLength` opens it on this runtime.
      const naive = createDecipheriv("aes-256-gcm", key, nonce);
      naive.setAAD(Buffer.concat([header, encodeContext(context)]));
      naive.setAuthTag(shortTag);
      expect(Buffer.concat([naive.update(ciphertext), naive.final()]).equals(plaintext)).toBe(true);
    }
    expectDecryptError(() => openBlob(key, blob, context), "auth_failed");
    // Without enough bytes for a full tag the blob does not even parse.
    const tiny = Buffer.concat([header, nonce, shortTag]);
    expectDecryptError(() => openBlob(key, tiny, context), "malformed");
  });

  it("rejects malformed headers", () => {
    const good = sealBlob(key, Buffer.from("abc"), { kid: "k1", context });
    const withByte = (position: number, value: number) => {
      const copy = Buffer.from(good);
      copy[position] = value;
      return copy;
    };
    const cases = [
      Buffer.alloc(0),
      Buffer.from([0x01]),
      withByte(0, 0x02), // unknown version
      withByte(0, 0x00),
      withByte(1, 0), // empty kid
      withByte(1, 33), // kid too long
      withByte(2, 0x20), // space in kid
      withByte(2, 0xe9), // non-ASCII byte in kid
      Buffer.concat([good.subarray(0, 4), Buffer.alloc(27)]), // one byte short of nonce + tag
    ];
    for (const blob of cases) {
      expectDecryptError(() => readBlobKid(blob), "malformed");
      expectDecryptError(() => openBlob(key, blob, context), "malformed");
    }
  });

  it("authenticates the kid: rewriting it to another valid kid fails", () => {
    const blob = sealBlob(key, Buffer.from("abc"), { kid: "k1", context });
    const relabelled = Buffer.from(blob);
    relabelled[3] = "2".charCodeAt(0);
    expect(readBlobKid(relabelled)).toBe("k2");
    expectDecryptError(() => openBlob(key, relabelled, context), "auth_failed");
  });

  it("never puts key or blob bytes in the error message", () => {
    const blob = sealBlob(key, Buffer.from("sk-canary-value"), { kid: "k1", context });
    const tampered = Buffer.from(blob);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    const error = expectDecryptError(() => openBlob(key, tampered, context), "auth_failed");
    expect(error.message).toBe("Stored ciphertext could not be decrypted (auth_failed)");
    for (const encoding of ["hex", "base64", "base64url", "latin1"] as const) {
      expect(error.message).not.toContain(key.toString(encoding));
      expect(error.message).not.toContain(tampered.toString(encoding));
      expect(error.message).not.toContain(split(tampered).tag.toString(encoding));
    }
    expect(error.message).not.toContain("sk-canary");
    expect(error.cause).toBeUndefined();
  });
});
