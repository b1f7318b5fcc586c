import { describe, expect, it } from "vitest";
import { newUsageRecord } from "../fixtures.contract.js";
import type { UsageRecord } from "../ports.js";
import { totalsPerDay } from "./usage-daily.js";

const owner = "user:daily";

describe("totalsPerDay", () => {
  it("sums interleaved records per owner, day, source, provider, model and key, null as 0, in primary-key order", () => {
    const records = [
      newUsageRecord(owner, "key_b", { model: "m", createdAt: "2025-03-02T10:00:00.000Z", inputTokens: 1, outputTokens: 2, cachedInputTokens: 3, costNanoUsd: 4 }),
      newUsageRecord(owner, null, { model: "m", createdAt: "2025-03-02T10:00:01.000Z", inputTokens: null, costNanoUsd: null, prices: null }),
      newUsageRecord(owner, "key_b", { model: "m", createdAt: "2025-03-02T23:59:59.999Z", inputTokens: 10, outputTokens: null, cachedInputTokens: null, costNanoUsd: 40 }),
      newUsageRecord(owner, "key_b", { model: "m", createdAt: "2025-03-03T00:00:00.000Z", inputTokens: 100, outputTokens: 0, cachedInputTokens: 0, costNanoUsd: 0 }),
      newUsageRecord(owner, "key_a", { model: "m", createdAt: "2025-03-02T11:00:00.000Z", costNanoUsd: null, prices: null }),
    ];
    expect(totalsPerDay(records)).toEqual([
      { owner, day: "2025-03-02", source: "byok", provider: "openai", model: "m", keyId: "key_a", requests: 1, inputTokens: 1_200, outputTokens: 300, cachedInputTokens: 1_024, costNanoUsd: 0, unpriced: 1 },
      { owner, day: "2025-03-02", source: "byok", provider: "openai", model: "m", keyId: "key_b", requests: 2, inputTokens: 11, outputTokens: 2, cachedInputTokens: 3, costNanoUsd: 44, unpriced: 0 },
      { owner, day: "2025-03-02", source: "platform", provider: "openai", model: "m", keyId: null, requests: 1, inputTokens: 0, outputTokens: 300, cachedInputTokens: 1_024, costNanoUsd: 0, unpriced: 1 },
      { owner, day: "2025-03-03", source: "byok", provider: "openai", model: "m", keyId: "key_b", requests: 1, inputTokens: 100, outputTokens: 0, cachedInputTokens: 0, costNanoUsd: 0, unpriced: 0 },
    ]);
  });

  it("groups a batch of many groups as it groups a few", () => {
    // 30 models, each record's group differing from the one before: well past the groups compared by field.
    const records: UsageRecord[] = Array.from({ length: 300 }, (_, index) =>
      newUsageRecord(index % 7 === 0 ? "user:other" : owner, index % 3 === 0 ? null : "key_a", { model: `model-${String(index % 30).padStart(2, "0")}`, costNanoUsd: index }),
    );
    const totals = totalsPerDay(records);
    expect(totals.reduce((sum, group) => sum + group.requests, 0)).toBe(300);
    expect(totals.reduce((sum, group) => sum + group.costNanoUsd, 0)).toBe((299 * 300) / 2);
    const keys = totals.map((group) => JSON.stringify([group.owner, group.day, group.source, group.provider, group.model, group.keyId ?? ""]));
    expect(new Set(keys).size).toBe(keys.length);
    expect([...keys].sort()).toEqual(keys);
    for (const group of totals) {
      const members = records.filter((record) => record.owner === group.owner && record.model === group.model && record.keyId === group.keyId);
      expect(group.requests).toBe(members.length);
    }
  });
});
