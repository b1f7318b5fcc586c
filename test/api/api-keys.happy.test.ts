import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startKeyport, type TestKeyport } from "../support/harness.js";
import { anthropicKey, openAiKey } from "../support/keys.js";

let keyport: TestKeyport;
let ownerCount = 0;

beforeAll(async () => {
  keyport = await startKeyport();
});
afterAll(async () => {
  await keyport.close();
});

/** A fresh owner per test, so tests never see each other's keys. */
async function newOwner(): Promise<string> {
  ownerCount += 1;
  return keyport.token(`happy-${ownerCount}-${Date.now()}`, { tier: "premium" });
}

async function createKey(token: string, body: Record<string, unknown>) {
  const response = await keyport.request("POST", "/api/v1/api-keys", { token, body });
  expect(response.status, response.text).toBe(201);
  return response.body;
}

describe("management API, success paths", () => {
  it("creates a validated OpenAI key, active, shown only by its hint", async () => {
    const token = await newOwner();
    const apiKey = openAiKey();
    keyport.mock.setKey(apiKey, "valid");
    const response = await keyport.request("POST", "/api/v1/api-keys", { token, body: { provider: "openai", apiKey, label: "Production" } });
    expect(response.status, response.text).toBe(201);
    expect(response.body).toMatchObject({
      provider: "openai",
      label: "Production",
      keyHint: `****...${apiKey.slice(-4)}`,
      status: "valid",
      statusDetail: null,
      isActive: true,
      monthlyLimitUsd: null,
      lastUsedAt: null,
      totalRequests: 0,
      totalTokens: 0,
      estimatedCostUsd: 0,
    });
    expect(response.body.id).toMatch(/^key_[0-9a-z]{26}$/);
    expect(response.text).not.toContain(apiKey);
    expect(response.headers.get("x-request-id")).toMatch(/^req_/);
    // The provider was asked with the key itself.
    const seen = keyport.mock.requests().filter((request) => request.headers.authorization === `Bearer ${apiKey}`);
    expect(seen.map((request) => request.path)).toContain("/v1/models");
  });

  it("creates a validated Anthropic key through its own adapter", async () => {
    const token = await newOwner();
    const apiKey = anthropicKey();
    keyport.mock.setKey(apiKey, "valid");
    const key = await createKey(token, { provider: "anthropic", apiKey });
    expect(key).toMatchObject({ provider: "anthropic", label: "Anthropic key", status: "valid", isActive: true });
    const seen = keyport.mock.requests().filter((request) => request.headers["x-api-key"] === apiKey);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen[0]?.headers["anthropic-version"]).toBe("2023-06-01");
  });

  it("lists only the owner's keys, filtered by provider, and gets one by id", async () => {
    const token = await newOwner();
    const openai = openAiKey();
    const anthropic = anthropicKey();
    keyport.mock.setKey(openai, "valid");
    keyport.mock.setKey(anthropic, "valid");
    const first = await createKey(token, { provider: "openai", apiKey: openai });
    const second = await createKey(token, { provider: "anthropic", apiKey: anthropic });

    const all = await keyport.request("GET", "/api/v1/api-keys", { token });
    expect(all.status).toBe(200);
    expect(all.body.keys.map((key: { id: string }) => key.id).sort()).toEqual([first.id, second.id].sort());

    const onlyAnthropic = await keyport.request("GET", "/api/v1/api-keys?provider=anthropic", { token });
    expect(onlyAnthropic.body.keys.map((key: { id: string }) => key.id)).toEqual([second.id]);

    const one = await keyport.request("GET", `/api/v1/api-keys/${first.id}`, { token });
    expect(one.status).toBe(200);
    expect(one.body).toEqual(first);
  });

  it("keeps the first key active; activating a second deactivates the first", async () => {
    const token = await newOwner();
    const [firstKey, secondKey] = [openAiKey(), openAiKey()];
    keyport.mock.setKey(firstKey, "valid");
    keyport.mock.setKey(secondKey, "valid");
    const first = await createKey(token, { provider: "openai", apiKey: firstKey });
    const second = await createKey(token, { provider: "openai", apiKey: secondKey });
    expect(first.isActive).toBe(true);
    expect(second.isActive).toBe(false);

    const activated = await keyport.request("PATCH", `/api/v1/api-keys/${second.id}`, { token, body: { isActive: true } });
    expect(activated.status, activated.text).toBe(200);
    expect(activated.body.isActive).toBe(true);
    const firstAfter = await keyport.request("GET", `/api/v1/api-keys/${first.id}`, { token });
    expect(firstAfter.body.isActive).toBe(false);

    const deactivated = await keyport.request("PATCH", `/api/v1/api-keys/${second.id}`, { token, body: { isActive: false } });
    expect(deactivated.body.isActive).toBe(false);
  });

  it("creates with activate: true and replaces the active key atomically", async () => {
    const token = await newOwner();
    const [firstKey, secondKey] = [openAiKey(), openAiKey()];
    keyport.mock.setKey(firstKey, "valid");
    keyport.mock.setKey(secondKey, "valid");
    const first = await createKey(token, { provider: "openai", apiKey: firstKey });
    const second = await createKey(token, { provider: "openai", apiKey: secondKey, activate: true });
    expect(second.isActive).toBe(true);
    const list = await keyport.request("GET", "/api/v1/api-keys", { token });
    const active = list.body.keys.filter((key: { isActive: boolean }) => key.isActive).map((key: { id: string }) => key.id);
    expect(active).toEqual([second.id]);
    expect(first.id).not.toBe(second.id);
  });

  it("updates label and monthly limit", async () => {
    const token = await newOwner();
    const apiKey = openAiKey();
    keyport.mock.setKey(apiKey, "valid");
    const key = await createKey(token, { provider: "openai", apiKey });
    const updated = await keyport.request("PATCH", `/api/v1/api-keys/${key.id}`, {
      token,
      body: { label: "Staging", monthlyLimitUsd: 12.5 },
    });
    expect(updated.status, updated.text).toBe(200);
    expect(updated.body).toMatchObject({ label: "Staging", monthlyLimitUsd: 12.5, keyHint: key.keyHint });
    const cleared = await keyport.request("PATCH", `/api/v1/api-keys/${key.id}`, { token, body: { monthlyLimitUsd: null } });
    expect(cleared.body.monthlyLimitUsd).toBeNull();
  });

  it("replaces the secret in place: same id, new hint, re-validated", async () => {
    const token = await newOwner();
    const [oldKey, newKey] = [openAiKey(), openAiKey()];
    keyport.mock.setKey(oldKey, "valid");
    keyport.mock.setKey(newKey, "no_credits");
    const key = await createKey(token, { provider: "openai", apiKey: oldKey });
    const replaced = await keyport.request("PUT", `/api/v1/api-keys/${key.id}/secret`, { token, body: { apiKey: newKey } });
    expect(replaced.status, replaced.text).toBe(200);
    expect(replaced.body).toMatchObject({ id: key.id, keyHint: `****...${newKey.slice(-4)}`, status: "no_credits" });
    expect(replaced.text).not.toContain(newKey);
  });

  it("tests a key and records what the provider says now", async () => {
    const token = await newOwner();
    const apiKey = openAiKey();
    keyport.mock.setKey(apiKey, "valid");
    const key = await createKey(token, { provider: "openai", apiKey });

    const valid = await keyport.request("POST", `/api/v1/api-keys/${key.id}/test`, { token });
    expect(valid.status, valid.text).toBe(200);
    expect(valid.body).toMatchObject({ result: "valid", key: { id: key.id, status: "valid" } });

    keyport.mock.setKey(apiKey, "invalid");
    const invalid = await keyport.request("POST", `/api/v1/api-keys/${key.id}/test`, { token });
    expect(invalid.body.result).toBe("invalid");
    expect(invalid.body.key.status).toBe("invalid");
    expect(invalid.body.key.statusDetail).toEqual(expect.any(String));
    expect(invalid.text).not.toContain(apiKey.slice(0, 12));
    expect(invalid.text).not.toContain(apiKey.slice(-8));

    keyport.mock.setKey(apiKey, "rate_limited");
    const limited = await keyport.request("POST", `/api/v1/api-keys/${key.id}/test`, { token });
    expect(limited.body.result).toBe("rate_limited");
    expect(limited.body.key.status).toBe("invalid"); // a transient answer keeps the status

    const audit = await keyport.request("GET", "/api/v1/audit", { token });
    expect(audit.body.events.map((event: { type: string }) => event.type)).toContain("key.invalidated");
  });

  it("deletes a key: 204, then 404, and the audit trail remains", async () => {
    const token = await newOwner();
    const apiKey = openAiKey();
    keyport.mock.setKey(apiKey, "valid");
    const key = await createKey(token, { provider: "openai", apiKey });
    const deleted = await keyport.request("DELETE", `/api/v1/api-keys/${key.id}`, { token });
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe("");
    const after = await keyport.request("GET", `/api/v1/api-keys/${key.id}`, { token });
    expect(after.status).toBe(404);
    expect(after.body.error).toMatchObject({ code: "not_found", type: "not_found_error" });
    const again = await keyport.request("DELETE", `/api/v1/api-keys/${key.id}`, { token });
    expect(again.status).toBe(404);

    const audit = await keyport.request("GET", "/api/v1/audit", { token });
    const types = audit.body.events.map((event: { type: string }) => event.type);
    expect(types[0]).toBe("key.deleted");
    expect(types).toContain("key.created");
    expect(audit.body.events[0]).toMatchObject({ keyId: key.id, actor: expect.stringMatching(/^happy-/), detail: { keyHint: key.keyHint } });
  });

  it("pages the audit trail newest first with a cursor", async () => {
    const token = await newOwner();
    const apiKey = openAiKey();
    keyport.mock.setKey(apiKey, "valid");
    const key = await createKey(token, { provider: "openai", apiKey });
    for (const label of ["a", "b", "c"]) {
      await keyport.request("PATCH", `/api/v1/api-keys/${key.id}`, { token, body: { label } });
    }
    const first = await keyport.request("GET", "/api/v1/audit?limit=2", { token });
    expect(first.status, first.text).toBe(200);
    expect(first.body.events).toHaveLength(2);
    expect(first.body.nextCursor).toBe(first.body.events[1].id);
    const second = await keyport.request("GET", `/api/v1/audit?limit=2&cursor=${first.body.nextCursor}`, { token });
    const all = [...first.body.events, ...second.body.events].map((event: { id: string }) => event.id);
    expect(new Set(all).size).toBe(all.length);
    expect([...all].sort().reverse()).toEqual(all);
  });

  it("serves health, readiness and the OpenAPI document", async () => {
    expect((await keyport.request("GET", "/healthz")).body).toEqual({ status: "ok" });
    expect((await keyport.request("GET", "/readyz")).body).toMatchObject({ status: "ready" });
    const openapi = await keyport.request("GET", "/openapi.json");
    expect(openapi.status).toBe(200);
    expect(Object.keys(openapi.body.paths)).toEqual(
      expect.arrayContaining(["/api/v1/api-keys", "/api/v1/api-keys/{id}", "/api/v1/api-keys/{id}/secret", "/api/v1/api-keys/{id}/test", "/api/v1/audit"]),
    );
  });
});
