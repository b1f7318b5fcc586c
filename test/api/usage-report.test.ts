import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../../src/lib/ids.js";
import type { UsageRecord } from "../../src/store/ports.js";
import { type Dialect, startKeyport, type TestKeyport } from "../support/harness.js";
import { describePostgres } from "../support/postgres.js";

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
    costNanoUsd: 4_500,
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

function usageReportSuite(dialect: Dialect) {
  let keyport: TestKeyport;
  let token: string;
  const owner = "user:report-user";

  beforeAll(async () => {
    keyport = await startKeyport({ dialect });
    token = await keyport.token("report-user");
    await keyport.app.store.usage.insertBatch([
      record(owner, { createdAt: "2026-10-31T23:59:59.000Z" }),
      record(owner, { createdAt: "2026-11-01T00:00:00.000Z" }),
      record(owner, { createdAt: "2026-11-01T08:00:00.000Z", model: "claude-haiku-4-5", provider: "anthropic", source: "byok", keyId: "key_x", costNanoUsd: 20_000 }),
      record(owner, { createdAt: "2026-11-02T10:00:00.000Z", model: "mystery-model", costNanoUsd: null, cachedInputTokens: 4 }),
      record("user:someone-else", { createdAt: "2026-11-01T12:00:00.000Z" }),
    ]);
  });
  afterAll(async () => {
    await keyport.close();
  });

  it("totals and a daily series for the range, the owner's records only", async () => {
    const response = await keyport.request("GET", "/api/v1/usage?from=2026-11-01&to=2026-12-01", { token });
    expect(response.status, response.text).toBe(200);
    expect(response.body.totals).toEqual({
      requests: 3,
      inputTokens: 30,
      outputTokens: 15,
      cachedInputTokens: 4,
      estimatedCostUsd: 0.0000245,
      unpricedRequests: 1,
    });
    expect(response.body.series.map((row: { group: string; requests: number }) => [row.group, row.requests])).toEqual([
      ["2026-11-01", 2],
      ["2026-11-02", 1],
    ]);
  });

  it("groups by model, key and provider, and filters by source", async () => {
    const byModel = await keyport.request("GET", "/api/v1/usage?from=2026-11-01&to=2026-12-01&groupBy=model", { token });
    expect(byModel.body.series.map((row: { group: string }) => row.group)).toEqual(["claude-haiku-4-5", "gpt-4o-mini", "mystery-model"]);
    const byKey = await keyport.request("GET", "/api/v1/usage?from=2026-11-01&to=2026-12-01&groupBy=key", { token });
    expect(byKey.body.series.map((row: { group: string; requests: number }) => [row.group, row.requests])).toEqual([
      ["key_x", 1],
      ["platform", 2],
    ]);
    const byok = await keyport.request("GET", "/api/v1/usage?from=2026-11-01&to=2026-12-01&groupBy=provider&source=byok", { token });
    expect(byok.body.series).toEqual([expect.objectContaining({ group: "anthropic", requests: 1, estimatedCostUsd: 0.00002 })]);
  });

  it("exports the series as CSV", async () => {
    const csv = await keyport.request("GET", "/api/v1/usage.csv?from=2026-11-01&to=2026-12-01&groupBy=model", { token });
    expect(csv.status).toBe(200);
    expect(csv.headers.get("content-type")).toContain("text/csv");
    expect(csv.text.split("\n")[0]).toBe("model,requests,input_tokens,output_tokens,cached_input_tokens,estimated_cost_usd,unpriced_requests");
    expect(csv.text).toContain("mystery-model,1,10,5,4,0,1");
  });

  it("refuses bad ranges and parameters with 400", async () => {
    for (const query of ["from=yesterday", "from=2026-12-01&to=2026-11-01", "from=2020-01-01&to=2026-01-01", "groupBy=week", "source=mine", "extra=1"]) {
      const response = await keyport.request("GET", `/api/v1/usage?${query}`, { token });
      expect(response.status, query).toBe(400);
      expect(response.body.error.code).toBe("invalid_request");
    }
    expect((await keyport.request("GET", "/api/v1/usage")).status).toBe(401);
  });
}

describe("usage report on SQLite", () => usageReportSuite("sqlite"));
await describePostgres("usage report on PostgreSQL", () => usageReportSuite("postgres"));
