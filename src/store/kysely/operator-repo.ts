import { type Kysely, sql } from "kysely";
import { newIdLowerBound } from "../../lib/ids.js";
import type { OperatorRepo, OperatorUsageQuery, UsageGroup } from "../ports.js";
import { toProviderKeyRow } from "./key-repo.js";
import { toRowLimit, toSafeInteger } from "./row-values.js";
import type { Database } from "./schema.js";

type Filters = Omit<OperatorUsageQuery, "groupBy" | "after" | "limit">;

/** The group of a record without a tier (written before tiers were recorded, or recovered). */
export const UNKNOWN_TIER = "unknown";

/**
 * The operator's reads across owners. Usage comes from the daily roll-up (`usage_daily`, kept in
 * step by every usage batch): the report works in whole UTC days, so no raw record is read and
 * its cost grows with owners × days × groups, not with calls. The one exception is the grouping
 * by tier, which the roll-up does not hold: it reads the range's records (see `usageByTierQuery`).
 */
export function createOperatorRepo(db: Kysely<Database>): OperatorRepo {
  function filtered(filters: Filters) {
    return db
      .selectFrom("usage_daily")
      .where("day", ">=", filters.fromDay)
      .where("day", "<", filters.toDay)
      .$if(filters.source !== undefined, (query) => query.where("source", "=", filters.source ?? ""))
      .$if(filters.provider !== undefined, (query) => query.where("provider", "=", filters.provider ?? ""));
  }

  // PostgreSQL's sum(bigint) is numeric (a string from the driver): cast back to bigint.
  const sums = [
    sql<number>`cast(coalesce(sum(requests), 0) as bigint)`.as("requests"),
    sql<number>`cast(coalesce(sum(input_tokens), 0) as bigint)`.as("input_tokens"),
    sql<number>`cast(coalesce(sum(output_tokens), 0) as bigint)`.as("output_tokens"),
    sql<number>`cast(coalesce(sum(cached_input_tokens), 0) as bigint)`.as("cached_input_tokens"),
    sql<number>`cast(coalesce(sum(cost_nano_usd), 0) as bigint)`.as("cost_nano_usd"),
    sql<number>`cast(coalesce(sum(unpriced), 0) as bigint)`.as("unpriced"),
  ] as const;

  function toTotals(row: Record<string, unknown>): Omit<UsageGroup, "group"> {
    return {
      requests: toSafeInteger(row.requests, "requests"),
      inputTokens: toSafeInteger(row.input_tokens, "input_tokens"),
      outputTokens: toSafeInteger(row.output_tokens, "output_tokens"),
      cachedInputTokens: toSafeInteger(row.cached_input_tokens, "cached_input_tokens"),
      costNanoUsd: toSafeInteger(row.cost_nano_usd, "cost_nano_usd"),
      unpricedRequests: toSafeInteger(row.unpriced, "unpriced"),
    };
  }

  return {
    async usage(query) {
      if (query.groupBy === "tier") {
        const rows = await usageByTierQuery(db, query).execute();
        return rows.map((row) => ({ group: String(row.group), ...toTotals(row) }));
      }
      const column = query.groupBy;
      const rows = await filtered(query)
        .$if(query.after !== undefined, (builder) => builder.where(column, ">", query.after ?? ""))
        .select([sql.ref<string>(column).as("group"), ...sums])
        .groupBy(column)
        .orderBy(column)
        .limit(toRowLimit(query.limit))
        .execute();
      return rows.map((row) => ({ group: String(row.group), ...toTotals(row) }));
    },
    async usageTotals(filters) {
      const row = await filtered(filters).select([...sums]).executeTakeFirst();
      return toTotals(row ?? {});
    },
    async keysWithStatus(statuses, options) {
      if (statuses.length === 0) return [];
      const rows = await db
        .selectFrom("provider_keys")
        .selectAll()
        .where("status", "in", [...statuses])
        .$if(options.afterId !== undefined, (query) => query.where("id", ">", options.afterId ?? ""))
        .orderBy("id")
        .limit(toRowLimit(options.limit))
        .execute();
      return rows.map(toProviderKeyRow);
    },
  };
}

/**
 * Usage per tier from the raw records of the range. The ids sort by creation time, so the days
 * become a range of the primary key (`created_at` has no index of its own); the scan reads every
 * record of the range, the price of no index on the gateway's write path. Every page reads the
 * range again; tiers are few, so one page usually holds them all. Exported for the query-plan tests.
 */
export function usageByTierQuery(db: Kysely<Database>, query: OperatorUsageQuery) {
  // A literal, not a parameter: PostgreSQL matches the select list to GROUP BY by expression,
  // and two parameters are two expressions.
  const tier = sql<string>`coalesce(tier, ${sql.lit(UNKNOWN_TIER)})`;
  return db
    .selectFrom("usage_records")
    .where("id", ">=", newIdLowerBound("use", Date.parse(`${query.fromDay}T00:00:00.000Z`)))
    .where("id", "<", newIdLowerBound("use", Date.parse(`${query.toDay}T00:00:00.000Z`)))
    .$if(query.source !== undefined, (builder) => builder.where("source", "=", query.source ?? ""))
    .$if(query.provider !== undefined, (builder) => builder.where("provider", "=", query.provider ?? ""))
    .$if(query.after !== undefined, (builder) => builder.where(tier, ">", query.after ?? ""))
    .select([
      tier.as("group"),
      // The roll-up's sums: null tokens and costs count as 0, a null cost as unpriced.
      sql<number>`count(*)`.as("requests"),
      sql<number>`cast(coalesce(sum(input_tokens), 0) as bigint)`.as("input_tokens"),
      sql<number>`cast(coalesce(sum(output_tokens), 0) as bigint)`.as("output_tokens"),
      sql<number>`cast(coalesce(sum(cached_input_tokens), 0) as bigint)`.as("cached_input_tokens"),
      sql<number>`cast(coalesce(sum(cost_nano_usd), 0) as bigint)`.as("cost_nano_usd"),
      sql<number>`sum(case when cost_nano_usd is null then 1 else 0 end)`.as("unpriced"),
    ])
    .groupBy(tier)
    .orderBy(tier)
    .limit(toRowLimit(query.limit));
}
