import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyportClient, KeyportError } from "../../src/client/index.js";
import { newId } from "../../src/lib/ids.js";
import { nanoToUsd } from "../../src/lib/money.js";
import type { UsageRecord } from "../../src/store/ports.js";
import { createUsers, openAiVia, storeKey as storeUserKey, waitForUsage } from "../gateway/gateway-support.js";
import { type Dialect, startKeyport, type TestKeyport } from "../support/harness.js";
import { anthropicKey, openAiKey } from "../support/keys.js";
import { describePostgres } from "../support/postgres.js";

const ADMIN_TOKEN = randomBytes(24).toString("base64url");
const RANGE = "from=2026-03-01&to=2026-04-01";

function record(owner: string, fields: Partial<UsageRecord> & Pick<UsageRecord, "createdAt">): UsageRecord {
  return {
    id: newId("use", Date.parse(fields.createdAt)),
    owner,
    keyId: null,
    source: "platform",
    tier: null,
    provider: "openai",
    endpoint: "chat.completions",
    model: "gpt-4o-mini",
    inputTokens: 10,
    outputTokens: 5,
    cachedInputTokens: 0,
    cacheWriteTokens: null,
    costNanoUsd: 1_000,
    prices: null,
    status: "ok",
    httpStatus: 200,
    latencyMs: 12,
    ttfbMs: 10,
    streamed: false,
    requestId: newId("req"),
    ...fields,
  };
}

type Group = { group: string; requests: number; inputTokens: number; estimatedCostUsd: number; unpricedRequests: number };

function operatorSuite(dialect: Dialect) {
  let keyport: TestKeyport;
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const get = (route: string) => keyport.request("GET", route, { headers: admin });
  const groupsOf = (body: { groups: Group[] }) => body.groups.map((row) => [row.group, row.requests]);
  /** Owners' keys: the secret of each, to look for in every answer. */
  const secrets: string[] = [];
  const keyIds: Record<string, string> = {};
  const platformKey = openAiKey();

  async function storeKey(owner: string, provider: "openai" | "anthropic", label: string): Promise<string> {
    const apiKey = provider === "openai" ? openAiKey() : anthropicKey();
    keyport.mock.setKey(apiKey, "valid");
    const token = await keyport.token(owner.slice("user:".length));
    const response = await keyport.request("POST", "/api/v1/api-keys", { token, body: { provider, apiKey, label } });
    expect(response.status, response.text).toBe(201);
    secrets.push(apiKey);
    return String(response.body.id);
  }

  beforeAll(async () => {
    keyport = await startKeyport({ dialect, env: { KEYPORT_ADMIN_TOKEN: ADMIN_TOKEN, PLATFORM_OPENAI_API_KEY: platformKey } });
    keyport.mock.setKey(platformKey, "valid");
    await keyport.app.store.usage.insertBatch([
      record("user:alice", { createdAt: "2026-03-01T00:00:00.000Z" }),
      record("user:alice", { createdAt: "2026-03-02T10:00:00.000Z", source: "byok", keyId: "key_alice", provider: "anthropic", model: "claude-haiku-4-5", costNanoUsd: 5_000 }),
      record("user:bob", { createdAt: "2026-03-02T11:00:00.000Z" }),
      record("user:bob", { createdAt: "2026-03-31T23:59:59.999Z", model: "mystery-model", costNanoUsd: null }),
      record("project:carol", { createdAt: "2026-03-15T08:00:00.000Z", inputTokens: 100 }),
      // Outside the range on both sides.
      record("user:alice", { createdAt: "2026-02-28T23:59:59.999Z" }),
      record("user:dave", { createdAt: "2026-04-01T00:00:00.000Z" }),
    ]);

    keyIds.aliceOk = await storeKey("user:alice", "openai", "fine");
    keyIds.aliceInvalid = await storeKey("user:alice", "anthropic", "revoked");
    keyIds.bobNoCredits = await storeKey("user:bob", "openai", "empty");
    keyIds.carolUndecryptable = await storeKey("user:carol", "openai", "broken");
    const at = new Date().toISOString();
    const mark = (owner: string, id: string, status: "invalid" | "no_credits" | "undecryptable") =>
      keyport.app.store.keys.setStatus(owner, id, { status, statusDetail: `marked ${status}`, at });
    await mark("user:alice", keyIds.aliceInvalid, "invalid");
    await mark("user:bob", keyIds.bobNoCredits, "no_credits");
    await mark("user:carol", keyIds.carolUndecryptable, "undecryptable");
  });
  afterAll(async () => {
    await keyport.close();
  });

  describe("authentication", () => {
    it.each(["/api/v1/admin/usage", "/api/v1/admin/keys", "/api/v1/admin/owners/user:alice"])("%s: 401 without the operator token or with a wrong one, 200 with it", async (route) => {
      expect((await keyport.request("GET", route)).status).toBe(401);
      const wrong = await keyport.request("GET", route, { headers: { authorization: `Bearer ${ADMIN_TOKEN}x` } });
      expect(wrong.status).toBe(401);
      expect(wrong.body.error.code).toBe("unauthenticated");
      // An end user's token is not the operator's.
      const userToken = await keyport.token("alice");
      expect((await keyport.request("GET", route, { token: userToken })).status).toBe(401);
      expect((await get(route)).status).toBe(200);
    });
  });

  describe("GET /api/v1/admin/usage", () => {
    it("groups by owner by default, in whole UTC days, with totals over the range", async () => {
      const response = await get(`/api/v1/admin/usage?${RANGE}`);
      expect(response.status, response.text).toBe(200);
      expect(response.body).toMatchObject({ from: "2026-03-01", to: "2026-04-01", groupBy: "owner", source: null, provider: null, nextCursor: null });
      expect(groupsOf(response.body)).toEqual([
        ["project:carol", 1],
        ["user:alice", 2],
        ["user:bob", 2],
      ]);
      expect(response.body.totals).toEqual({
        requests: 5,
        inputTokens: 140,
        outputTokens: 25,
        cachedInputTokens: 0,
        estimatedCostUsd: 0.000008,
        unpricedRequests: 1,
      });
      expect(response.headers.get("cache-control")).toBe("no-store");
    });

    it.each([
      ["provider", [["anthropic", 1], ["openai", 4]]],
      ["model", [["claude-haiku-4-5", 1], ["gpt-4o-mini", 3], ["mystery-model", 1]]],
      ["source", [["byok", 1], ["platform", 4]]],
      ["day", [["2026-03-01", 1], ["2026-03-02", 2], ["2026-03-15", 1], ["2026-03-31", 1]]],
      // Stored without a tier, as every record made before tiers were recorded.
      ["tier", [["unknown", 5]]],
    ])("groupBy=%s", async (groupBy, expected) => {
      const response = await get(`/api/v1/admin/usage?${RANGE}&groupBy=${groupBy}`);
      expect(response.status, response.text).toBe(200);
      expect(groupsOf(response.body)).toEqual(expected);
      expect(response.body.totals.requests).toBe(5);
    });

    it("filters by key source and provider: the platform key's spend per owner", async () => {
      const response = await get(`/api/v1/admin/usage?${RANGE}&groupBy=owner&source=platform&provider=openai`);
      expect(response.body.groups).toEqual([
        expect.objectContaining({ group: "project:carol", requests: 1, estimatedCostUsd: 0.000001 }),
        expect.objectContaining({ group: "user:alice", requests: 1, estimatedCostUsd: 0.000001 }),
        expect.objectContaining({ group: "user:bob", requests: 2, estimatedCostUsd: 0.000001, unpricedRequests: 1 }),
      ]);
      expect(response.body.totals).toMatchObject({ requests: 4, estimatedCostUsd: 0.000003 });
    });

    it("pages through the groups with a cursor; totals stay those of the whole range", async () => {
      const first = await get(`/api/v1/admin/usage?${RANGE}&limit=2`);
      expect(groupsOf(first.body)).toEqual([
        ["project:carol", 1],
        ["user:alice", 2],
      ]);
      expect(first.body.totals.requests).toBe(5);
      expect(typeof first.body.nextCursor).toBe("string");
      const second = await get(`/api/v1/admin/usage?${RANGE}&limit=2&cursor=${first.body.nextCursor as string}`);
      expect(groupsOf(second.body)).toEqual([["user:bob", 2]]);
      expect(second.body.nextCursor).toBeNull();
      // A cursor of owners does not continue a list of models.
      const other = await get(`/api/v1/admin/usage?${RANGE}&groupBy=model&cursor=${first.body.nextCursor as string}`);
      expect(other.status).toBe(400);
      expect(other.body.error.code).toBe("invalid_cursor");
    });

    it("groupBy=tier&source=platform: the platform key's spend per tier of the callers, records without a tier as unknown", async () => {
      const newUser = createUsers(keyport, `tier-${dialect}`);
      const [first, second] = [await newUser("community"), await newUser("community")];
      const premium = await newUser("premium");
      // A premium owner with a stored key: its calls are BYOK, not the platform key's spend.
      const byok = await newUser("lifetime");
      await storeUserKey(keyport, byok, "openai");
      // Today and tomorrow: a call made just before midnight is still in the range.
      const today = new Date().toISOString().slice(0, 10);
      const to = new Date(Date.parse(today) + 2 * 86_400_000).toISOString().slice(0, 10);
      const range = `from=${today}&to=${to}`;
      const chat = (user: { token: string; marker: string }) =>
        openAiVia(keyport, user.token).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: `Hello from ${user.marker}` }] }).withResponse();
      const answers = await Promise.all([chat(first), chat(first), chat(second), chat(premium), chat(byok)]);
      expect(answers.map(({ response }) => response.headers.get("x-keyport-key-source"))).toEqual(["platform", "platform", "platform", "platform", "byok"]);
      // A platform record made before tiers were recorded.
      const old = record("user:before-tiers", { createdAt: new Date().toISOString(), costNanoUsd: 7_000 });
      await keyport.app.store.usage.insertBatch([old]);
      const stored = [
        ...(await waitForUsage(keyport, first.owner, 2)),
        ...(await waitForUsage(keyport, second.owner, 1)),
        ...(await waitForUsage(keyport, premium.owner, 1)),
        ...(await waitForUsage(keyport, byok.owner, 1)),
      ];
      expect(stored.map((row) => [row.tier, row.source])).toEqual([
        ["community", "platform"],
        ["community", "platform"],
        ["community", "platform"],
        ["premium", "platform"],
        ["lifetime", "byok"],
      ]);
      const costOf = (tier: string) => stored.filter((row) => row.tier === tier && row.source === "platform").reduce((sum, row) => sum + (row.costNanoUsd ?? 0), 0);
      expect(costOf("community")).toBeGreaterThan(0);

      const response = await get(`/api/v1/admin/usage?${range}&groupBy=tier&source=platform`);
      expect(response.status, response.text).toBe(200);
      expect(response.body).toMatchObject({ groupBy: "tier", source: "platform", nextCursor: null });
      expect(response.body.groups).toEqual([
        expect.objectContaining({ group: "community", requests: 3, estimatedCostUsd: nanoToUsd(costOf("community")), unpricedRequests: 0 }),
        expect.objectContaining({ group: "premium", requests: 1, estimatedCostUsd: nanoToUsd(costOf("premium")), unpricedRequests: 0 }),
        expect.objectContaining({ group: "unknown", requests: 1, estimatedCostUsd: nanoToUsd(7_000) }),
      ]);
      expect(response.body.groups.map((row: Group) => row.inputTokens)).toEqual([
        stored.filter((row) => row.tier === "community").reduce((sum, row) => sum + (row.inputTokens ?? 0), 0),
        stored.find((row) => row.tier === "premium")?.inputTokens,
        10,
      ]);
      // The totals come from the daily roll-up; they agree with the tiers' sum.
      expect(response.body.totals).toMatchObject({ requests: 5, estimatedCostUsd: nanoToUsd(costOf("community") + costOf("premium") + 7_000) });

      // Without the source filter the BYOK call's tier shows too; with another provider nothing does.
      expect(groupsOf((await get(`/api/v1/admin/usage?${range}&groupBy=tier`)).body)).toEqual([
        ["community", 3],
        ["lifetime", 1],
        ["premium", 1],
        ["unknown", 1],
      ]);
      expect(groupsOf((await get(`/api/v1/admin/usage?${range}&groupBy=tier&source=platform&provider=anthropic`)).body)).toEqual([]);

      // Paged by tier name, like the other groupings; a cursor of owners does not continue it.
      const page = await get(`/api/v1/admin/usage?${range}&groupBy=tier&source=platform&limit=2`);
      expect(groupsOf(page.body)).toEqual([
        ["community", 3],
        ["premium", 1],
      ]);
      const next = await get(`/api/v1/admin/usage?${range}&groupBy=tier&source=platform&limit=2&cursor=${page.body.nextCursor as string}`);
      expect(groupsOf(next.body)).toEqual([["unknown", 1]]);
      expect(next.body.nextCursor).toBeNull();
      const owners = await get(`/api/v1/admin/usage?${range}&limit=1`);
      const mixed = await get(`/api/v1/admin/usage?${range}&groupBy=tier&cursor=${owners.body.nextCursor as string}`);
      expect(mixed.status).toBe(400);
      expect(mixed.body.error.code).toBe("invalid_cursor");

      // keyport/client takes the grouping too.
      const client = createKeyportClient({ baseUrl: keyport.url, token: ADMIN_TOKEN });
      const viaClient = await client.admin.usage({ from: today, to, groupBy: "tier", source: "platform" });
      expect(viaClient.groups.map((row) => row.group)).toEqual(["community", "premium", "unknown"]);
    });

    it.each([
      ["from=2026-02-30", "invalid_request"],
      ["from=2026-03-01T00:00:00Z", "invalid_request"],
      ["from=2026-04-01&to=2026-03-01", "invalid_request"],
      ["from=2024-01-01&to=2026-01-01", "invalid_request"],
      ["groupBy=tiers", "invalid_request"],
      ["groupBy=key", "invalid_request"],
      ["source=mine", "invalid_request"],
      ["provider=google", "invalid_request"],
      ["limit=0", "invalid_request"],
      ["limit=1001", "invalid_request"],
      ["extra=1", "invalid_request"],
      ["cursor=not-a-cursor", "invalid_cursor"],
    ])("refuses %s with 400 %s", async (query, code) => {
      const response = await get(`/api/v1/admin/usage?${query}`);
      expect(response.status, response.text).toBe(400);
      expect(response.body.error.code).toBe(code);
    });
  });

  describe("GET /api/v1/admin/keys", () => {
    it("lists the keys needing attention with their owners, oldest first, and nothing secret", async () => {
      const response = await get("/api/v1/admin/keys?status=attention");
      expect(response.status, response.text).toBe(200);
      expect(response.body.keys.map((key: { owner: string; id: string; status: string }) => [key.owner, key.id, key.status])).toEqual([
        ["user:alice", keyIds.aliceInvalid, "invalid"],
        ["user:bob", keyIds.bobNoCredits, "no_credits"],
        ["user:carol", keyIds.carolUndecryptable, "undecryptable"],
      ]);
      expect(response.body.keys[0]).toMatchObject({ provider: "anthropic", label: "revoked", keyHint: expect.stringMatching(/^\*{4}\.{3}.{4}$/), statusDetail: "marked invalid" });
      expect(response.body.nextCursor).toBeNull();
      expectNoSecret(response.text);
      // The default is the same list.
      expect((await get("/api/v1/admin/keys")).body.keys).toHaveLength(3);
    });

    it("filters by one status and pages with a cursor", async () => {
      const invalid = await get("/api/v1/admin/keys?status=invalid");
      expect(invalid.body.keys.map((key: { id: string }) => key.id)).toEqual([keyIds.aliceInvalid]);
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < 5; page += 1) {
        const response = await get(`/api/v1/admin/keys?limit=1${cursor === null ? "" : `&cursor=${cursor}`}`);
        expect(response.status, response.text).toBe(200);
        seen.push(...response.body.keys.map((key: { id: string }) => key.id));
        cursor = response.body.nextCursor as string | null;
        if (cursor === null) break;
      }
      expect(seen).toEqual([keyIds.aliceInvalid, keyIds.bobNoCredits, keyIds.carolUndecryptable]);
    });

    it.each([
      ["status=valid", "invalid_request"],
      ["limit=101", "invalid_request"],
      ["cursor=zzzz", "invalid_cursor"],
    ])("refuses %s with 400 %s", async (query, code) => {
      const response = await get(`/api/v1/admin/keys?${query}`);
      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe(code);
    });
  });

  describe("GET /api/v1/admin/owners/:owner", () => {
    it("shows one owner's keys (hints only) and usage by provider, never a secret", async () => {
      const response = await get(`/api/v1/admin/owners/user:alice?${RANGE}`);
      expect(response.status, response.text).toBe(200);
      expect(response.body.owner).toBe("user:alice");
      expect(response.body.keys.map((key: { id: string }) => key.id).sort()).toEqual([keyIds.aliceOk, keyIds.aliceInvalid].sort());
      expect(response.body.usage.groupBy).toBe("provider");
      expect(response.body.usage.series.map((row: Group) => [row.group, row.requests])).toEqual([
        ["anthropic", 1],
        ["openai", 1],
      ]);
      expectNoSecret(response.text);
      for (const field of ["ciphertext", "fingerprint", "apiKey", "wrapped"]) expect(response.text).not.toContain(`"${field}"`);
      // The same view, grouped by model, through the URL-encoded owner.
      const byModel = await get(`/api/v1/admin/owners/${encodeURIComponent("user:alice")}?${RANGE}&groupBy=model`);
      expect(byModel.body.usage.series.map((row: Group) => row.group)).toEqual(["claude-haiku-4-5", "gpt-4o-mini"]);
    });

    it("an owner with nothing stored: empty keys and usage", async () => {
      const response = await get("/api/v1/admin/owners/project:nobody");
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ owner: "project:nobody", keys: [], usage: { series: [] } });
    });

    it("refuses an owner that is not user:<id> or project:<id>", async () => {
      for (const owner of ["alice", "team:x", "user:", "user:a%20b"]) {
        const response = await get(`/api/v1/admin/owners/${owner}`);
        expect(response.status, owner).toBe(400);
        expect(response.body.error.code).toBe("invalid_request");
      }
    });
  });

  it("is in the OpenAPI document with operationIds and named schemas", async () => {
    const document = (await keyport.request("GET", "/openapi.json")).body;
    expect(document.paths["/api/v1/admin/usage"].get.operationId).toBe("getOperatorUsage");
    expect(document.paths["/api/v1/admin/keys"].get.operationId).toBe("listOperatorKeys");
    expect(document.paths["/api/v1/admin/owners/{owner}"].get.operationId).toBe("getOperatorOwner");
    for (const name of ["OperatorUsageReport", "OperatorApiKeyList", "OperatorApiKey", "OperatorOwnerView"]) expect(document.components.schemas[name], name).toBeDefined();
    expect(document.paths["/metrics"]).toBeUndefined();
  });

  it("keyport/client reads the operator API with the operator token", async () => {
    const client = createKeyportClient({ baseUrl: keyport.url, token: ADMIN_TOKEN });
    const usage = await client.admin.usage({ from: "2026-03-01", to: "2026-04-01", groupBy: "provider" });
    expect(usage.groups.map((row) => row.group)).toEqual(["anthropic", "openai"]);
    const keys = await client.admin.keys({ status: "undecryptable" });
    expect(keys.keys.map((key) => key.owner)).toEqual(["user:carol"]);
    const owner = await client.admin.owner("user:bob", { from: "2026-03-01", to: "2026-04-01" });
    expect(owner.usage.totals.requests).toBe(2);
    const wrong = createKeyportClient({ baseUrl: keyport.url, token: "not-the-token" });
    await expect(wrong.admin.usage()).rejects.toMatchObject({ status: 401, code: "unauthenticated" });
    await expect(wrong.admin.usage()).rejects.toBeInstanceOf(KeyportError);
  });

  /** Fails when `text` holds any stored key, a piece of one, or a row's secret columns. */
  function expectNoSecret(text: string): void {
    for (const secret of secrets) {
      expect(text).not.toContain(secret);
      for (let start = 0; start + 8 <= secret.length; start += 4) expect(text).not.toContain(secret.slice(start, start + 8));
    }
  }

  describe("without KEYPORT_ADMIN_TOKEN", () => {
    it("every operator route answers 403, whatever is presented", async () => {
      const off = await startKeyport({ dialect });
      try {
        for (const route of ["/api/v1/admin/usage", "/api/v1/admin/keys", "/api/v1/admin/owners/user:alice"]) {
          const response = await off.request("GET", route, { headers: admin });
          expect(response.status, route).toBe(403);
          expect(response.body.error.code).toBe("forbidden");
        }
      } finally {
        await off.close();
      }
    });
  });
}

describe("operator API on SQLite", () => operatorSuite("sqlite"));
await describePostgres("operator API on PostgreSQL", () => operatorSuite("postgres"));
