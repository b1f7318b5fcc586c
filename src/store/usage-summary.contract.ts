import { describe, expect, it } from "vitest";
import { newId } from "../lib/ids.js";
import { newOwner, newUsageRecord } from "./fixtures.contract.js";
import type { Store, UsageGroup, UsageGroupBy, UsageQuery, UsageRecord, UsageSource } from "./ports.js";

const SEED = 20_250_327;
const DAY_MS = 86_400_000;
/** The records span seven UTC days across a month's end; "now" is late on the last one. */
const FIRST_DAY = Date.parse("2025-03-27T00:00:00.000Z");
export const USAGE_FIXTURE_NOW = "2025-04-02T17:41:23.456Z";
const MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", ""];
const GROUP_BYS: readonly UsageGroupBy[] = ["day", "model", "key", "provider"];
const SOURCES: ReadonlyArray<UsageSource | undefined> = [undefined, "byok", "platform"];

/** Small seeded generator (mulberry32): the same records on every run and both dialects. */
function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const iso = (ms: number): string => new Date(ms).toISOString();
const at = (day: number, time: string): string => `${iso(FIRST_DAY + day * DAY_MS).slice(0, 10)}T${time}Z`;

export type UsageFixture = { records: UsageRecord[]; batches: UsageRecord[][] };

/**
 * Records of three owners over seven days: random models, keys (and the platform's null key),
 * sources, providers, null token counts and null costs, some exactly at midnight or on the last
 * millisecond of a day. The batches insert every record, several of them twice (a retry, alone
 * or among new records, once concurrently with the first attempt).
 */
export function createUsageFixture(owners: readonly string[]): UsageFixture {
  const random = createRandom(SEED);
  const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)] as T;
  const countOrNull = (max: number): number | null => (random() < 0.2 ? null : Math.floor(random() * max));
  const keysOf = new Map(owners.map((owner) => [owner, [newId("key"), newId("key"), null]]));
  const endMs = Date.parse(USAGE_FIXTURE_NOW);
  const records: UsageRecord[] = [];
  const recordAt = (owner: string, createdAtMs: number, overrides: Partial<UsageRecord> = {}): void => {
    const keyId = pick(keysOf.get(owner) ?? [null]);
    const isPriced = random() >= 0.25;
    records.push(
      newUsageRecord(owner, keyId, {
        id: newId("use", createdAtMs),
        source: random() < 0.8 ? (keyId === null ? "platform" : "byok") : pick(["byok", "platform"]),
        provider: pick(["openai", "anthropic"]),
        model: pick(MODELS),
        inputTokens: countOrNull(5_000),
        outputTokens: countOrNull(2_000),
        cachedInputTokens: countOrNull(1_000),
        costNanoUsd: isPriced ? Math.floor(random() * 3_000_000) : null,
        ...(isPriced ? {} : { prices: null }),
        createdAt: iso(createdAtMs),
        ...overrides,
      }),
    );
  };
  owners.forEach((owner, index) => {
    const count = index === 0 ? 700 : 120;
    for (let n = 0; n < count; n += 1) recordAt(owner, FIRST_DAY + Math.floor(random() * (endMs - FIRST_DAY)));
    for (let day = 0; day < 7; day += 1) {
      recordAt(owner, FIRST_DAY + day * DAY_MS);
      if (day < 6) recordAt(owner, FIRST_DAY + (day + 1) * DAY_MS - 1);
    }
  });
  // The only records of their model, late in a day: a range that subtracts that part of the day
  // leaves the group at zero requests, which must not be shown.
  recordAt(owners[0] as string, Date.parse(at(2, "23:30:00.000")), { model: "late-model" });
  recordAt(owners[0] as string, Date.parse(at(2, "23:59:59.999")), { model: "late-model", costNanoUsd: null, prices: null });

  const shuffled = [...records];
  for (let index = shuffled.length - 1; index > 0; index -= 1) {
    const other = Math.floor(random() * (index + 1));
    [shuffled[index], shuffled[other]] = [shuffled[other] as UsageRecord, shuffled[index] as UsageRecord];
  }
  const batches: UsageRecord[][] = [];
  for (let start = 0; start < shuffled.length; ) {
    const size = 1 + Math.floor(random() * (random() < 0.3 ? 120 : 30));
    const batch = shuffled.slice(start, start + size);
    start += size;
    const earlier = batches.length === 0 ? undefined : pick(batches);
    batches.push(batch);
    if (earlier !== undefined && random() < 0.3) batches.push(random() < 0.5 ? earlier : [...earlier.slice(0, 30), ...batch]);
  }
  return { records, batches };
}

/** The report computed from the records themselves: what aggregating the raw rows gives. */
export function expectedUsageSummary(records: readonly UsageRecord[], owner: string, query: UsageQuery): UsageGroup[] {
  const groups = new Map<string, UsageGroup>();
  for (const record of records) {
    if (record.owner !== owner || record.createdAt < query.from || record.createdAt >= query.to) continue;
    if (query.source !== undefined && record.source !== query.source) continue;
    const label = labelOf(record, query.groupBy);
    const group = groups.get(label) ?? { group: label, requests: 0, inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, costNanoUsd: 0, unpricedRequests: 0 };
    group.requests += 1;
    group.inputTokens += record.inputTokens ?? 0;
    group.outputTokens += record.outputTokens ?? 0;
    group.cachedInputTokens += record.cachedInputTokens ?? 0;
    group.costNanoUsd += record.costNanoUsd ?? 0;
    if (record.costNanoUsd === null) group.unpricedRequests += 1;
    groups.set(label, group);
  }
  return [...groups.values()].sort((a, b) => (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
}

function labelOf(record: UsageRecord, groupBy: UsageGroupBy): string {
  switch (groupBy) {
    case "day":
      return record.createdAt.slice(0, 10);
    case "model":
      return record.model;
    case "key":
      return record.keyId ?? "platform";
    case "provider":
      return record.provider;
  }
}

/** Day-aligned ranges, edges inside a day on either side, ranges within one day, to = now and later. */
export function usageFixtureRanges(records: readonly UsageRecord[]): Array<{ from: string; to: string }> {
  const random = createRandom(SEED + 1);
  const fixed: Array<[string, string]> = [
    ["2025-03-01T00:00:00.000Z", "2025-05-01T00:00:00.000Z"],
    [at(1, "00:00:00.000"), at(4, "00:00:00.000")],
    [at(0, "22:00:00.000"), at(3, "02:30:00.000")],
    [at(0, "02:13:14.159"), at(4, "21:00:00.000")],
    [at(0, "21:00:00.001"), at(4, "20:59:59.999")],
    [at(1, "01:00:00.000"), at(5, "03:00:00.000")],
    [at(2, "10:00:00.000"), at(2, "11:30:00.000")],
    [at(2, "00:30:00.000"), at(2, "23:00:00.000")],
    [at(2, "00:00:00.000"), at(2, "20:00:00.000")],
    [at(2, "05:00:00.000"), at(3, "00:00:00.000")],
    [at(2, "00:00:00.000"), at(2, "23:59:59.999")],
    [at(2, "00:00:00.001"), at(3, "00:00:00.000")],
    [at(2, "23:59:59.999"), at(3, "00:00:00.001")],
    ["2025-04-01T00:00:00.000Z", USAGE_FIXTURE_NOW],
    ["2025-03-01T00:00:00.000Z", USAGE_FIXTURE_NOW],
    [at(1, "15:00:00.000"), USAGE_FIXTURE_NOW],
    [at(6, "00:00:00.000"), USAGE_FIXTURE_NOW],
    [at(3, "00:00:00.000"), iso(Date.parse(USAGE_FIXTURE_NOW) + 3 * DAY_MS)],
    [at(3, "07:00:00.000"), at(6, "23:59:59.999")],
    ["2025-03-01T00:00:00.000Z", "2030-01-01T00:00:00.000Z"],
    ["2024-01-01T00:00:00.000Z", "2024-02-01T00:00:00.000Z"],
    [at(3, "12:00:00.000"), at(3, "12:00:00.000")],
  ];
  const ranges = fixed.map(([from, to]) => ({ from, to }));
  // Edges exactly on stored records' times (from includes its record, to excludes its own).
  for (let n = 0; n < 6; n += 1) {
    const [a, b] = [records[Math.floor(random() * records.length)], records[Math.floor(random() * records.length)]];
    if (a !== undefined && b !== undefined) ranges.push(a.createdAt <= b.createdAt ? { from: a.createdAt, to: b.createdAt } : { from: b.createdAt, to: a.createdAt });
  }
  const span = Date.parse(USAGE_FIXTURE_NOW) + DAY_MS - (FIRST_DAY - DAY_MS);
  for (let n = 0; n < 12; n += 1) {
    const ends = [random(), random()].map((fraction) => FIRST_DAY - DAY_MS + Math.floor(fraction * span)).sort((a, b) => a - b);
    ranges.push({ from: iso(ends[0] as number), to: iso(ends[1] as number) });
  }
  return ranges;
}

/** Checks the store's summary of each range, by every grouping, with and without a source. */
export async function expectSummariesOfRecords(
  store: Store,
  records: readonly UsageRecord[],
  owner: string,
  ranges: ReadonlyArray<{ from: string; to: string }>,
): Promise<void> {
  for (const range of ranges) {
    for (const groupBy of GROUP_BYS) {
      for (const source of SOURCES) {
        const query: UsageQuery = { ...range, groupBy, ...(source === undefined ? {} : { source }) };
        expect(await store.usage.summarize(owner, query), JSON.stringify(query)).toEqual(expectedUsageSummary(records, owner, query));
      }
    }
  }
}

/** Usage-report behaviour every `Store` must show; registered inside the store contract. */
export function describeUsageSummaryContract(currentStore: () => Store): void {
  describe("usage summary", () => {
    it(`equals the aggregation of the stored records for any range, grouping and source (seed ${SEED})`, async () => {
      const store = currentStore();
      const owners = [newOwner(), newOwner(), newOwner()];
      const { records, batches } = createUsageFixture(owners);
      for (const [index, batch] of batches.entries()) {
        // One batch is written together with its own retry, as two recorders' attempts could be.
        if (index === 3) await Promise.all([store.usage.insertBatch(batch), store.usage.insertBatch([...batch].reverse())]);
        else await store.usage.insertBatch(batch);
      }
      expect(await store.usage.count()).toBe(records.length);

      await expectSummariesOfRecords(store, records, owners[0] as string, usageFixtureRanges(records));
      for (const owner of owners.slice(1)) {
        for (const groupBy of GROUP_BYS) {
          const query: UsageQuery = { from: at(0, "06:00:00.000"), to: USAGE_FIXTURE_NOW, groupBy };
          expect(await store.usage.summarize(owner, query), JSON.stringify(query)).toEqual(expectedUsageSummary(records, owner, query));
        }
      }
      expect(await store.usage.summarize(newOwner(), { from: "2025-03-01T00:00:00.000Z", to: USAGE_FIXTURE_NOW, groupBy: "day" })).toEqual([]);
    });
  });
}
