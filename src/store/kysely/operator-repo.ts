import { type Kysely, sql } from "kysely";
import type { OperatorRepo, OperatorUsageQuery, UsageGroup } from "../ports.js";
import { toProviderKeyRow } from "./key-repo.js";
import { toRowLimit, toSafeInteger } from "./row-values.js";
import type { Database } from "./schema.js";

type Filters = Omit<OperatorUsageQuery, "groupBy" | "after" | "limit">;

/**
 * The operator's reads across owners. Usage comes from the daily roll-up only (`usage_daily`, kept
 * in step by every usage batch): the report works in whole UTC days, so no raw record is read and
 * its cost grows with owners × days × groups, not with calls.
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
