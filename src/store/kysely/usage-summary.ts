import { type Kysely, sql } from "kysely";
import type { UsageGroup, UsageQuery } from "../ports.js";
import { toSafeInteger } from "./row-values.js";
import type { Database } from "./schema.js";

/**
 * One owner's usage in a time range, grouped. Served by the (owner, created_at) index: the scan
 * touches that owner's rows in the range only, however large the table. Sums are cast to bigint
 * because PostgreSQL's `sum(bigint)` is `numeric` (returned as a string by the driver).
 */
export async function summarizeUsage(db: Kysely<Database>, owner: string, query: UsageQuery): Promise<UsageGroup[]> {
  const group = groupExpression(query.groupBy);
  let select = db
    .selectFrom("usage_records")
    .select([
      group.as("group"),
      sql<number>`count(*)`.as("requests"),
      sql<number>`cast(coalesce(sum(input_tokens), 0) as bigint)`.as("input_tokens"),
      sql<number>`cast(coalesce(sum(output_tokens), 0) as bigint)`.as("output_tokens"),
      sql<number>`cast(coalesce(sum(cached_input_tokens), 0) as bigint)`.as("cached_input_tokens"),
      sql<number>`cast(coalesce(sum(cost_nano_usd), 0) as bigint)`.as("cost_nano_usd"),
      sql<number>`sum(case when cost_nano_usd is null then 1 else 0 end)`.as("unpriced"),
    ])
    .where("owner", "=", owner)
    .where("created_at", ">=", query.from)
    .where("created_at", "<", query.to);
  if (query.source !== undefined) select = select.where("source", "=", query.source);
  const rows = await select.groupBy(group).orderBy(group).execute();
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

function groupExpression(groupBy: UsageQuery["groupBy"]) {
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
