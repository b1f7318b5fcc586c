import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEnvelope } from "../../src/crypto/envelope.js";
import { createMasterKeyring, masterKeyId, parseMasterKeyHex } from "../../src/crypto/master-keys.js";
import { systemClock } from "../../src/lib/clock.js";
import { startMockProvider } from "../../src/mock-provider/mock-provider.js";
import type { MockProvider } from "../../src/mock-provider/types.js";
import { MasterKeyMismatchError } from "../../src/vault/master-key-check.js";
import { rotateMasterKey } from "../../src/vault/rotate-master-key.js";
import { startKeyport, type TestKeyport } from "../support/harness.js";
import { openAiKey } from "../support/keys.js";

let mock: MockProvider;
let dataDir: string;

beforeAll(async () => {
  mock = await startMockProvider({ acceptUnknownKeys: true });
});
afterAll(async () => {
  await mock.close();
});

function freshDataDir(): string {
  dataDir = mkdtempSync(path.join(tmpdir(), "keyport-at-rest-"));
  return dataDir;
}

function masterKeyHex(): string {
  return randomBytes(32).toString("hex");
}

async function storeKey(keyport: TestKeyport, sub: string): Promise<{ token: string; id: string }> {
  const token = await keyport.token(sub, { tier: "premium" });
  const response = await keyport.request("POST", "/api/v1/api-keys", { token, body: { provider: "openai", apiKey: openAiKey() } });
  expect(response.status, response.text).toBe(201);
  return { token, id: response.body.id };
}

/** Alice's and Bob's keys, with Alice's ciphertext copied onto Bob's row (it must not open there). */
async function storeWithBobHoldingAlicesCiphertext(keyport: TestKeyport) {
  const alice = await storeKey(keyport, "alice");
  const bob = await storeKey(keyport, "bob");
  const database = new Database(path.join(dataDir, "keyport.db"));
  database.prepare("update provider_keys set ciphertext = (select ciphertext from provider_keys where id = ?) where id = ?").run(alice.id, bob.id);
  database.close();
  mock.clearRequests();
  return { alice, bob };
}

describe("secrets at rest", () => {
  it("a gateway call with an owner's key that no longer opens: 409 key_undecryptable, the key marked and audited, nothing upstream", async () => {
    const keyport = await startKeyport({ mock, dataDir: freshDataDir() });
    try {
      const { alice, bob } = await storeWithBobHoldingAlicesCiphertext(keyport);

      const body = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hello" }] };
      for (let attempt = 0; attempt < 2; attempt += 1) {
        const call = await keyport.request("POST", "/openai/v1/chat/completions", { token: bob.token, body });
        expect(call.status, call.text).toBe(409);
        expect(call.body.error).toMatchObject({ code: "key_undecryptable" });
      }
      expect(mock.requests()).toEqual([]);

      const key = await keyport.request("GET", `/api/v1/api-keys/${bob.id}`, { token: bob.token });
      expect(key.body).toMatchObject({ status: "undecryptable", statusDetail: expect.stringContaining("re-enter") });
      const audit = await keyport.request("GET", "/api/v1/audit", { token: bob.token });
      expect(audit.body.events.filter((event: { type: string }) => event.type === "key.undecryptable")).toHaveLength(1);

      // Alice's key, whose ciphertext it is, still serves her calls.
      const aliceCall = await keyport.request("POST", "/openai/v1/chat/completions", { token: alice.token, body });
      expect(aliceCall.status, aliceCall.text).toBe(200);
    } finally {
      await keyport.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("a ciphertext copied onto another owner's row does not open; the key is marked undecryptable and nothing goes upstream", async () => {
    const keyport = await startKeyport({ mock, dataDir: freshDataDir() });
    try {
      const { alice, bob } = await storeWithBobHoldingAlicesCiphertext(keyport);

      const test = await keyport.request("POST", `/api/v1/api-keys/${bob.id}/test`, { token: bob.token });
      expect(test.status, test.text).toBe(409);
      expect(test.body.error).toMatchObject({ code: "key_undecryptable" });
      expect(mock.requests()).toEqual([]);

      const key = await keyport.request("GET", `/api/v1/api-keys/${bob.id}`, { token: bob.token });
      expect(key.body).toMatchObject({ status: "undecryptable", statusDetail: expect.stringContaining("re-enter") });
      const audit = await keyport.request("GET", "/api/v1/audit", { token: bob.token });
      expect(audit.body.events[0]).toMatchObject({ type: "key.undecryptable", keyId: bob.id, actor: "system" });

      // Alice's own key is untouched and still opens.
      const aliceTest = await keyport.request("POST", `/api/v1/api-keys/${alice.id}/test`, { token: alice.token });
      expect(aliceTest.body.result).toBe("valid");

      // Re-entering the secret repairs the key.
      const repaired = await keyport.request("PUT", `/api/v1/api-keys/${bob.id}/secret`, { token: bob.token, body: { apiKey: openAiKey() } });
      expect(repaired.body.status).toBe("valid");
    } finally {
      await keyport.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("a wrong ENCRYPTION_KEY stops the start with a message naming fingerprints, not keys", async () => {
    const dir = freshDataDir();
    const right = masterKeyHex();
    const first = await startKeyport({ mock, dataDir: dir, env: { ENCRYPTION_KEY: right } });
    await storeKey(first, "carol");
    await first.close();

    const wrong = masterKeyHex();
    const attempt = startKeyport({ mock, dataDir: dir, env: { ENCRYPTION_KEY: wrong } });
    await expect(attempt).rejects.toBeInstanceOf(MasterKeyMismatchError);
    const error = (await attempt.catch((caught: unknown) => caught)) as Error;
    expect(error.message).toContain(masterKeyId(parseMasterKeyHex(wrong)));
    expect(error.message).toContain(masterKeyId(parseMasterKeyHex(right)));
    expect(error.message).toContain("ENCRYPTION_KEY_PREVIOUS");
    expect(error.message).not.toContain(wrong);
    expect(error.message).not.toContain(right);
    rmSync(dir, { recursive: true, force: true });
  });

  it("rotation rewraps every data key; keys stay usable and no blob of the old key is left", async () => {
    const dir = freshDataDir();
    const oldKey = masterKeyHex();
    const newKey = masterKeyHex();
    const before = await startKeyport({ mock, dataDir: dir, env: { ENCRYPTION_KEY: oldKey } });
    const stored = [await storeKey(before, "dave"), await storeKey(before, "erin"), await storeKey(before, "frank")];
    await before.close();

    // Staged: new key current, old key decrypt-only. Keys keep working before the rewrap.
    const staged = await startKeyport({ mock, dataDir: dir, env: { ENCRYPTION_KEY: newKey, ENCRYPTION_KEY_PREVIOUS: oldKey } });
    // Each instance has its own JWT secret: tokens are signed again for it.
    const graceToken = await staged.token("dave", { tier: "premium" });
    const grace = await staged.request("POST", `/api/v1/api-keys/${stored[0]?.id}/test`, { token: graceToken });
    expect(grace.body.result).toBe("valid");
    const keyring = createMasterKeyring({ current: newKey, previous: [oldKey] });
    const report = await rotateMasterKey(
      { dataKeys: staged.app.store.dataKeys, envelope: createEnvelope(keyring), clock: systemClock },
      keyring.current.kid,
    );
    expect(report).toMatchObject({ rewrapped: 3, failed: 0, countsByKid: { [keyring.current.kid]: 3 } });
    // Running it again finds nothing left to do.
    const again = await rotateMasterKey(
      { dataKeys: staged.app.store.dataKeys, envelope: createEnvelope(keyring), clock: systemClock },
      keyring.current.kid,
    );
    expect(again.rewrapped).toBe(0);
    await staged.close();

    const database = new Database(path.join(dir, "keyport.db"), { readonly: true });
    const kids = database.prepare("select kid from data_keys").all() as { kid: string }[];
    database.close();
    const oldKid = masterKeyId(parseMasterKeyHex(oldKey));
    expect(kids.map((row) => row.kid)).toEqual([keyring.current.kid, keyring.current.kid, keyring.current.kid]);
    expect(kids.map((row) => row.kid)).not.toContain(oldKid);

    // The old key is gone from the configuration; every key still opens.
    const after = await startKeyport({ mock, dataDir: dir, env: { ENCRYPTION_KEY: newKey } });
    try {
      for (const [index, { id }] of stored.entries()) {
        const token = await after.token(["dave", "erin", "frank"][index] ?? "", { tier: "premium" });
        const test = await after.request("POST", `/api/v1/api-keys/${id}/test`, { token });
        expect(test.status, test.text).toBe(200);
        expect(test.body.result).toBe("valid");
      }
    } finally {
      await after.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
