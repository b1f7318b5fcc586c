import { type Kysely, type RawBuilder, sql } from "kysely";
import type { UsageGroup, UsageGroupBy, UsageQuery } from "../ports.js";
import { toSafeInteger } from "./row-values.js";
import { type Database, PLATFORM_KEY_ID, type UsageDailyTable } from "./schema.js";
import { planSummary, type RecordSpan } from "./usage-summary-plan.js";

/** One row of a part of the summary: a group's sums from the roll-up or from raw records. */
type PartRow = { group: string } & Omit<UsageDailyTable, "owner" | "day" | "source" | "provider" | "model" | "key_id">;

/**
 * One owner's usage in a time range, grouped: the same groups, sums and order as aggregating the
 * range's records, read mostly from the daily roll-up (see `planSummary`).
 */
export async function summarizeUsage(db: Kysely<Database>, owner: string, query: UsageQuery): Promise<UsageGroup[]> {
  const summary = usageSummaryQuery(db, owner, query);
  if (summary === undefined) return [];
  const rows = await summary.execute();
  return rows.map((row) => ({
    group: String(row.group),
    requests: toSafeInteger(row.requests, "requests"),
    inputTokens: toSafeInteger(row.input_tokens, "input_tokens"),
    outputTokens: toSafeInteger(row.output_tokens, "output_tokens"),
    cachedInputTokens: toSafeInteger(row.cached_input_tokens, "cached_input_tokens"),
    costNanoUsd: toSafeInteger(row.cost_nano_usd, "cost_nano_usd"),
    unpricedRequests: toSafeInteger(row.unpriced, "unpriced"),
  }));
}

/**
 * The summary as one statement: the roll-up's whole days, plus and minus the edge records, summed
 * per group. A group whose requests come to 0 (all of it subtracted) is left out, as raw
 * aggregation would never show it. Sums are cast to bigint because PostgreSQL's `sum(bigint)` is
 * `numeric` (returned as a string by the driver). `undefined` for an empty range. Exported for
 * the query-plan tests.
 */
export function usageSummaryQuery(db: Kysely<Database>, owner: string, query: UsageQuery) {
  const plan = planSummary(query.from, query.to);
  const records = [
    ...plan.add.map((span) => recordsPart(db, owner, query, span, 1)),
    ...plan.subtract.map((span) => recordsPart(db, owner, query, span, -1)),
  ];
  let parts;
  if (plan.days !== null) {
    parts = rollupPart(db, owner, query, plan.days).unionAll(records).as("parts");
  } else {
    const [first, ...rest] = records;
    if (first === undefined) return undefined;
    parts = first.unionAll(rest).as("parts");
  }
  return db
    .selectFrom(parts)
    .select([
      "group",
      sql<number>`cast(sum(requests) as bigint)`.as("requests"),
      sql<number>`cast(sum(input_tokens) as bigint)`.as("input_tokens"),
      sql<number>`cast(sum(output_tokens) as bigint)`.as("output_tokens"),
      sql<number>`cast(sum(cached_input_tokens) as bigint)`.as("cached_input_tokens"),
      sql<number>`cast(sum(cost_nano_usd) as bigint)`.as("cost_nano_usd"),
      sql<number>`cast(sum(unpriced) as bigint)`.as("unpriced"),
    ])
    .groupBy("group")
    .having(sql<boolean>`sum(requests) > 0`)
    .orderBy("group");
}

/** Whole days from `usage_daily`: a range of its primary key (owner, day, …). */
function rollupPart(db: Kysely<Database>, owner: string, query: UsageQuery, days: { first: string; last: string }) {
  let part = db
    .selectFrom("usage_daily")
    .select([
      rollupGroup(query.groupBy).as("group"),
      "requests",
      "input_tokens",
      "output_tokens",
      "cached_input_tokens",
      "cost_nano_usd",
      "unpriced",
    ])
    .where("owner", "=", owner)
    .where("day", ">=", days.first)
    .where("day", "<=", days.last);
  if (query.source !== undefined) part = part.where("source", "=", query.source);
  return part.$castTo<PartRow>();
}

/** Raw records of one span, summed per group and signed: +1 adds them, -1 takes them away. */
function recordsPart(db: Kysely<Database>, owner: string, query: UsageQuery, span: RecordSpan, sign: 1 | -1) {
  const group = recordGroup(query.groupBy);
  const signed = (sum: RawBuilder<unknown>) => (sign === 1 ? sql<number>`${sum}` : sql<number>`-(${sum})`);
  let part = db
    .selectFrom("usage_records")
    .select([
      group.as("group"),
      signed(sql`count(*)`).as("requests"),
      signed(sql`cast(coalesce(sum(input_tokens), 0) as bigint)`).as("input_tokens"),
      signed(sql`cast(coalesce(sum(output_tokens), 0) as bigint)`).as("output_tokens"),
      signed(sql`cast(coalesce(sum(cached_input_tokens), 0) as bigint)`).as("cached_input_tokens"),
      signed(sql`cast(coalesce(sum(cost_nano_usd), 0) as bigint)`).as("cost_nano_usd"),
      signed(sql`sum(case when cost_nano_usd is null then 1 else 0 end)`).as("unpriced"),
    ])
    // Served by the (owner, created_at) index: the owner's records in the span only.
    .where("owner", "=", owner)
    .where("created_at", ">=", span.from)
    .where("created_at", "<", span.to);
  if (query.source !== undefined) part = part.where("source", "=", query.source);
  return part.groupBy(group).$castTo<PartRow>();
}

/** A record's group label; `rollupGroup` must give the same label for the same record. */
function recordGroup(groupBy: UsageGroupBy) {
  switch (groupBy) {
    case "day":
      // ISO-8601 text timestamps: the first ten characters are the UTC day on both dialects.
      return sql<string>`substr(created_at, 1, 10)`;
    case "model":
      return sql<string>`model`;
    case "key":
      return sql<string>`coalesce(key_id, 'platform')`;
    case "provider":
      return sql<string>`provider`;
  }
}

/** A roll-up row's group label, the same as `recordGroup` gives its records. */
function rollupGroup(groupBy: UsageGroupBy) {
  switch (groupBy) {
    case "day":
      return sql<string>`day`;
    case "model":
      return sql<string>`model`;
    case "key":
      // Platform records are keyed PLATFORM_KEY_ID in the roll-up.
      return sql<string>`coalesce(nullif(key_id, ${sql.lit(PLATFORM_KEY_ID)}), 'platform')`;
    case "provider":
      return sql<string>`provider`;
  }
}
