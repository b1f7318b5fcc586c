import type { Insertable, Kysely } from "kysely";
import type { UsageRecord } from "../ports.js";
import { type Database, PLATFORM_KEY_ID, type UsageDailyTable } from "./schema.js";

/** What a batch adds to one `usage_daily` row. */
export type DailyTotals = {
  owner: string;
  /** `YYYY-MM-DD` (UTC): the first ten characters of the records' `createdAt`. */
  day: string;
  source: UsageRecord["source"];
  provider: UsageRecord["provider"];
  model: string;
  keyId: string | null;
  requests: number;
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
  costNanoUsd: number;
  /** Records whose cost is unknown (null). */
  unpriced: number;
};

function isInGroup(totals: DailyTotals, record: UsageRecord): boolean {
  return (
    record.owner === totals.owner &&
    record.model === totals.model &&
    record.keyId === totals.keyId &&
    record.source === totals.source &&
    record.provider === totals.provider &&
    record.createdAt.startsWith(totals.day)
  );
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The primary key's column order, so concurrent writers take the rows' locks in one order. */
function compareGroups(a: DailyTotals, b: DailyTotals): number {
  return (
    compareText(a.owner, b.owner) ||
    compareText(a.day, b.day) ||
    compareText(a.source, b.source) ||
    compareText(a.provider, b.provider) ||
    compareText(a.model, b.model) ||
    compareText(a.keyId ?? PLATFORM_KEY_ID, b.keyId ?? PLATFORM_KEY_ID)
  );
}

/**
 * Up to this many groups in a batch, a record finds its group by comparing fields; a batch with
 * more switches to a map. Building and hashing a map key cost about 0.3 µs a record, several
 * times the comparisons, and a batch usually holds one or two groups.
 */
const GROUPS_COMPARED = 8;

type GroupFields = Pick<DailyTotals, "owner" | "source" | "provider" | "model" | "keyId">;

/** The row's primary key as one string, for batches with many groups. */
function groupKey(fields: GroupFields, day: string): string {
  // Lengths first make it unambiguous whatever characters owner and model hold; source and
  // provider are fixed words, the day is ten characters and the key id comes last.
  return `${fields.owner.length}:${fields.owner}${day}${fields.source}:${fields.provider}:${fields.model.length}:${fields.model}${fields.keyId ?? PLATFORM_KEY_ID}`;
}

function findGroup(groups: readonly DailyTotals[], record: UsageRecord): DailyTotals | undefined {
  for (const group of groups) if (isInGroup(group, record)) return group;
  return undefined;
}

function emptyGroup(record: UsageRecord): DailyTotals {
  return {
    owner: record.owner,
    day: record.createdAt.slice(0, 10),
    source: record.source,
    provider: record.provider,
    model: record.model,
    keyId: record.keyId,
    requests: 0,
    inputTokens: 0,
    outputTokens: 0,
    cachedInputTokens: 0,
    costNanoUsd: 0,
    unpriced: 0,
  };
}

/** Sums the inserted records per `usage_daily` row, null counts and costs as 0, like the report. */
export function totalsPerDay(records: readonly UsageRecord[]): DailyTotals[] {
  const groups: DailyTotals[] = [];
  let byKey: Map<string, DailyTotals> | undefined;
  for (const record of records) {
    let current: DailyTotals | undefined;
    let key: string | undefined;
    if (byKey === undefined) {
      current = findGroup(groups, record);
    } else {
      key = groupKey(record, record.createdAt.slice(0, 10));
      current = byKey.get(key);
    }
    if (current === undefined) {
      current = emptyGroup(record);
      groups.push(current);
      if (byKey !== undefined && key !== undefined) byKey.set(key, current);
      else if (groups.length > GROUPS_COMPARED) byKey = new Map(groups.map((group) => [groupKey(group, group.day), group]));
    }
    current.requests += 1;
    current.inputTokens += record.inputTokens ?? 0;
    current.outputTokens += record.outputTokens ?? 0;
    current.cachedInputTokens += record.cachedInputTokens ?? 0;
    if (record.costNanoUsd === null) current.unpriced += 1;
    else current.costNanoUsd += record.costNanoUsd;
  }
  // One lock order for every writer, so two instances upserting the same rows cannot deadlock.
  return groups.sort(compareGroups);
}

export function toDailyRow(totals: DailyTotals): Insertable<UsageDailyTable> {
  return {
    owner: totals.owner,
    day: totals.day,
    source: totals.source,
    provider: totals.provider,
    model: totals.model,
    key_id: totals.keyId ?? PLATFORM_KEY_ID,
    requests: totals.requests,
    input_tokens: totals.inputTokens,
    output_tokens: totals.outputTokens,
    cached_input_tokens: totals.cachedInputTokens,
    cost_nano_usd: totals.costNanoUsd,
    unpriced: totals.unpriced,
  };
}

/**
 * Adds one group's totals to its `usage_daily` row, creating the row on the day's first record.
 * One statement on both dialects (`on conflict … do update`), so two batches adding to the same
 * row never read-modify-write. The SQLite writer compiles this once and binds by position.
 */
export function upsertDailyTotals(db: Kysely<Database>, row: Insertable<UsageDailyTable>) {
  return db
    .insertInto("usage_daily")
    .values(row)
    .onConflict((conflict) =>
      conflict.columns(["owner", "day", "source", "provider", "model", "key_id"]).doUpdateSet((eb) => ({
        requests: eb("usage_daily.requests", "+", eb.ref("excluded.requests")),
        input_tokens: eb("usage_daily.input_tokens", "+", eb.ref("excluded.input_tokens")),
        output_tokens: eb("usage_daily.output_tokens", "+", eb.ref("excluded.output_tokens")),
        cached_input_tokens: eb("usage_daily.cached_input_tokens", "+", eb.ref("excluded.cached_input_tokens")),
        cost_nano_usd: eb("usage_daily.cost_nano_usd", "+", eb.ref("excluded.cost_nano_usd")),
        unpriced: eb("usage_daily.unpriced", "+", eb.ref("excluded.unpriced")),
      })),
    );
}
