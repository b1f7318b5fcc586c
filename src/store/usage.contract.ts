import { describe, expect, it } from "vitest";
import { newId } from "../lib/ids.js";
import { newKey, newOwner, newUsageRecord as newRecord, usageTime as time } from "./fixtures.contract.js";
import type { NewProviderKey, Store, UsageRecord } from "./ports.js";

const WHOLE_RANGE = { from: time(-1_000_000), to: time(1_000_000) };

/**
 * Usage-repository behaviour every `Store` must show. Registered inside the store contract,
 * which hands over a fresh, empty store per test through `currentStore`.
 */
export function describeUsageContract(currentStore: () => Store): void {
  describe("usage", () => {
    async function insertKey(owner: string): Promise<string> {
      const key = newKeyAt(owner);
      await currentStore().keys.insert(key, { activate: true, at: time(0) });
      return key.id;
    }

    it("inserts a batch and lists the owner's records oldest first, every field round-tripped", async () => {
      const store = currentStore();
      const owner = newOwner();
      const keyId = await insertKey(owner);
      const records = [
        newRecord(owner, keyId, { createdAt: time(3) }),
        newRecord(owner, null, {
          createdAt: time(1),
          tier: null,
          provider: "anthropic",
          model: "",
          inputTokens: null,
          outputTokens: null,
          cachedInputTokens: null,
          cacheWriteTokens: null,
          costNanoUsd: null,
          prices: null,
          status: "error",
          httpStatus: 502,
          ttfbMs: null,
          streamed: false,
        }),
        newRecord(owner, keyId, { createdAt: time(2), tier: "free", cacheWriteTokens: 4_096, status: "partial", costNanoUsd: 2 ** 40 + 3 }),
      ];
      await store.usage.insertBatch(records);
      const listed = await store.usage.listByOwner(owner, WHOLE_RANGE);
      expect(listed).toEqual([records[1], records[2], records[0]]);
      expect(listed.map((record) => record.tier)).toEqual([null, "free", "pro"]);
      expect(typeof listed[0]?.streamed).toBe("boolean");
      expect(typeof listed[1]?.costNanoUsd).toBe("number");
      expect(await store.usage.count()).toBe(3);
    });

    it("lists only records created in [from, to)", async () => {
      const store = currentStore();
      const owner = newOwner();
      const records = [0, 1, 2, 3].map((minute) => newRecord(owner, null, { createdAt: time(minute) }));
      await store.usage.insertBatch(records);
      const listed = await store.usage.listByOwner(owner, { from: time(1), to: time(3) });
      expect(listed.map((record) => record.createdAt)).toEqual([time(1), time(2)]);
      expect(await store.usage.listByOwner(owner, { from: time(3), to: time(3) })).toEqual([]);
    });

    it("ignores records already stored, so a retried batch neither duplicates rows nor counts twice", async () => {
      const store = currentStore();
      const owner = newOwner();
      const keyId = await insertKey(owner);
      const first = [newRecord(owner, keyId), newRecord(owner, keyId)];
      await store.usage.insertBatch(first);
      await store.usage.insertBatch(first);
      const later = newRecord(owner, keyId, { createdAt: time(5) });
      await store.usage.insertBatch([...first, later, later]);
      expect(await store.usage.count()).toBe(3);
      expect(await store.usage.listByOwner(owner, WHOLE_RANGE)).toHaveLength(3);
      expect(await store.keys.findById(owner, keyId)).toMatchObject({ totalRequests: 3, totalTokens: 3 * 1_500, costNanoUsd: 3 * 285_000 });
    });

    it("stores a batch of many statements' worth, part of it stored before, once, and counts only the new records", async () => {
      const store = currentStore();
      const owner = newOwner();
      const keyId = await insertKey(owner);
      const batch = Array.from({ length: 160 }, (_, index) => newRecord(owner, keyId, { createdAt: time(index) }));
      const storedBefore = [0, 26, 27, 74, 159].map((index) => batch[index] as UsageRecord);
      await store.usage.insertBatch(storedBefore);
      await store.usage.insertBatch(batch);
      expect(await store.usage.count()).toBe(160);
      expect((await store.usage.listByOwner(owner, WHOLE_RANGE)).map((record) => record.id)).toEqual(batch.map((record) => record.id));
      expect(await store.keys.findById(owner, keyId)).toMatchObject({ totalRequests: 160, costNanoUsd: 160 * 285_000, lastUsedAt: time(159) });
    });

    it("counts each record once when a batch and its retry run at the same time", async () => {
      const store = currentStore();
      const owner = newOwner();
      const keyId = await insertKey(owner);
      const batch = Array.from({ length: 20 }, (_, index) => newRecord(owner, keyId, { createdAt: time(index) }));
      await Promise.all([store.usage.insertBatch(batch), store.usage.insertBatch([...batch].reverse()), store.usage.insertBatch(batch.slice(5))]);
      expect(await store.usage.count()).toBe(20);
      expect(await store.keys.findById(owner, keyId)).toMatchObject({ totalRequests: 20, costNanoUsd: 20 * 285_000 });
    });

    it("adds inserted records to their keys' totals: tokens are input + output, unknown cost adds 0, last use is the latest", async () => {
      const store = currentStore();
      const owner = newOwner();
      const keyA = await insertKey(owner);
      const keyB = await insertKey(owner);
      await store.usage.insertBatch([
        newRecord(owner, keyA, { inputTokens: 100, outputTokens: 50, costNanoUsd: 1_000, createdAt: time(10) }),
        newRecord(owner, keyA, { inputTokens: 7, outputTokens: null, costNanoUsd: null, prices: null, createdAt: time(30) }),
        newRecord(owner, keyA, { inputTokens: null, outputTokens: null, costNanoUsd: 5, createdAt: time(20) }),
        newRecord(owner, keyB, { inputTokens: 1, outputTokens: 2, costNanoUsd: 3, createdAt: time(15) }),
        newRecord(owner, null, { inputTokens: 1_000_000, costNanoUsd: 999_999 }),
      ]);
      expect(await store.keys.findById(owner, keyA)).toMatchObject({ totalRequests: 3, totalTokens: 157, costNanoUsd: 1_005, lastUsedAt: time(30) });
      expect(await store.keys.findById(owner, keyB)).toMatchObject({ totalRequests: 1, totalTokens: 3, costNanoUsd: 3, lastUsedAt: time(15) });

      // An older batch arriving late adds to the totals but does not move the last use back.
      await store.usage.insertBatch([newRecord(owner, keyA, { inputTokens: 1, outputTokens: 1, costNanoUsd: 10, createdAt: time(1) })]);
      expect(await store.keys.findById(owner, keyA)).toMatchObject({ totalRequests: 4, totalTokens: 159, costNanoUsd: 1_015, lastUsedAt: time(30) });
    });

    it("keeps a null cost and null prices null, and keeps zero distinct from unknown", async () => {
      const store = currentStore();
      const owner = newOwner();
      const unknown = newRecord(owner, null, { costNanoUsd: null, prices: null, outputTokens: null });
      const free = newRecord(owner, null, {
        costNanoUsd: 0,
        outputTokens: 0,
        prices: { inputNanoUsdPerMTok: 0, outputNanoUsdPerMTok: 0, cachedInputNanoUsdPerMTok: 0, cacheWriteNanoUsdPerMTok: 0 },
        createdAt: time(2),
      });
      await store.usage.insertBatch([unknown, free]);
      const [storedUnknown, storedFree] = await store.usage.listByOwner(owner, WHOLE_RANGE);
      expect(storedUnknown).toMatchObject({ costNanoUsd: null, prices: null, outputTokens: null });
      expect(storedFree).toMatchObject({ costNanoUsd: 0, outputTokens: 0, prices: { inputNanoUsdPerMTok: 0 } });
    });

    it("never lists another owner's records, and a record naming another owner's key leaves that key alone", async () => {
      const store = currentStore();
      const owner = newOwner();
      const other = newOwner();
      const othersKey = await insertKey(other);
      await store.usage.insertBatch([newRecord(owner, othersKey), newRecord(other, othersKey, { costNanoUsd: 7 })]);
      expect((await store.usage.listByOwner(owner, WHOLE_RANGE)).map((record) => record.owner)).toEqual([owner]);
      expect((await store.usage.listByOwner(other, WHOLE_RANGE)).map((record) => record.owner)).toEqual([other]);
      expect(await store.usage.listByOwner(newOwner(), WHOLE_RANGE)).toEqual([]);
      expect(await store.keys.findById(other, othersKey)).toMatchObject({ totalRequests: 1, costNanoUsd: 7 });
    });

    it("stores usage of a deleted key and keeps its history", async () => {
      const store = currentStore();
      const owner = newOwner();
      const keyId = await insertKey(owner);
      await store.keys.delete(owner, keyId);
      await store.usage.insertBatch([newRecord(owner, keyId)]);
      expect(await store.usage.listByOwner(owner, WHOLE_RANGE)).toMatchObject([{ keyId }]);
    });

    it("writes a batch larger than one statement holds, and accepts an empty batch", async () => {
      const store = currentStore();
      const owner = newOwner();
      const keyId = await insertKey(owner);
      await store.usage.insertBatch([]);
      expect(await store.usage.count()).toBe(0);
      const records = Array.from({ length: 1_234 }, (_, index) => newRecord(owner, keyId, { createdAt: time(index % 60) }));
      await store.usage.insertBatch(records);
      expect(await store.usage.count()).toBe(1_234);
      expect(await store.keys.findById(owner, keyId)).toMatchObject({ totalRequests: 1_234, costNanoUsd: 1_234 * 285_000 });
    });

    it("groups the operator's usage by tier from the records of whole UTC days (ids by time), null as unknown, with the source and provider filters", async () => {
      const store = currentStore();
      const owner = newOwner();
      const other = newOwner();
      const at = (createdAt: string, fields: Partial<UsageRecord> = {}) =>
        newRecord(fields.owner ?? owner, null, { id: newId("use", Date.parse(createdAt)), createdAt, ...fields });
      await store.usage.insertBatch([
        // The day's edges: the first and the last millisecond are in, the ones either side are not.
        at("2025-02-28T23:59:59.999Z", { tier: "pro" }),
        at("2025-03-01T00:00:00.000Z", { tier: "pro", costNanoUsd: 100, inputTokens: 1, outputTokens: 2, cachedInputTokens: 0 }),
        at("2025-03-01T23:59:59.999Z", { tier: "pro", costNanoUsd: 200, inputTokens: 3, outputTokens: 4, cachedInputTokens: 1 }),
        at("2025-03-02T00:00:00.000Z", { tier: "pro" }),
        at("2025-03-01T08:00:00.000Z", { owner: other, tier: "free", costNanoUsd: null, inputTokens: null }),
        at("2025-03-01T09:00:00.000Z", { tier: null, costNanoUsd: 7 }),
        at("2025-03-01T10:00:00.000Z", { tier: "free", source: "byok", keyId: "key_someone", costNanoUsd: 1_000 }),
        at("2025-03-01T11:00:00.000Z", { tier: "free", provider: "anthropic", costNanoUsd: 30 }),
      ]);
      const day = { fromDay: "2025-03-01", toDay: "2025-03-02" };
      const platform = { ...day, groupBy: "tier" as const, source: "platform" as const, limit: 100 };
      expect(await store.operator.usage(platform)).toEqual([
        { group: "free", requests: 2, inputTokens: 1_200, outputTokens: 600, cachedInputTokens: 2_048, costNanoUsd: 30, unpricedRequests: 1 },
        { group: "pro", requests: 2, inputTokens: 4, outputTokens: 6, cachedInputTokens: 1, costNanoUsd: 300, unpricedRequests: 0 },
        { group: "unknown", requests: 1, inputTokens: 1_200, outputTokens: 300, cachedInputTokens: 1_024, costNanoUsd: 7, unpricedRequests: 0 },
      ]);
      // The same records as the roll-up behind every other grouping: the totals agree.
      expect(await store.operator.usageTotals({ ...day, source: "platform" })).toEqual({
        requests: 5,
        inputTokens: 2_404,
        outputTokens: 906,
        cachedInputTokens: 3_073,
        costNanoUsd: 337,
        unpricedRequests: 1,
      });
      expect((await store.operator.usage({ ...platform, provider: "anthropic" })).map((row) => [row.group, row.requests])).toEqual([["free", 1]]);
      expect((await store.operator.usage({ ...day, groupBy: "tier", limit: 100 })).map((row) => [row.group, row.requests])).toEqual([
        ["free", 3],
        ["pro", 2],
        ["unknown", 1],
      ]);
      // Paged: groups after the cursor's, up to the limit.
      expect((await store.operator.usage({ ...platform, limit: 1 })).map((row) => row.group)).toEqual(["free"]);
      expect((await store.operator.usage({ ...platform, after: "free", limit: 1 })).map((row) => row.group)).toEqual(["pro"]);
      expect((await store.operator.usage({ ...platform, after: "pro", limit: 5 })).map((row) => row.group)).toEqual(["unknown"]);
      expect(await store.operator.usage({ ...platform, after: "unknown", limit: 5 })).toEqual([]);
      // Two days: the edge records of the next day come in, the day before stays out.
      expect((await store.operator.usage({ ...platform, toDay: "2025-03-03" })).map((row) => [row.group, row.requests])).toEqual([
        ["free", 2],
        ["pro", 3],
        ["unknown", 1],
      ]);
    });

    it("writes nothing when one record of the batch cannot be stored", async () => {
      const store = currentStore();
      const owner = newOwner();
      const keyId = await insertKey(owner);
      // A record without the required `model` violates NOT NULL in both databases.
      const broken = { ...newRecord(owner, keyId), model: null } as unknown as UsageRecord;
      await expect(store.usage.insertBatch([newRecord(owner, keyId), broken])).rejects.toThrow();
      expect(await store.usage.count()).toBe(0);
      expect(await store.keys.findById(owner, keyId)).toMatchObject({ totalRequests: 0, costNanoUsd: 0, lastUsedAt: null });
    });
  });
}

function newKeyAt(owner: string): NewProviderKey {
  return newKey(owner, time(0));
}
