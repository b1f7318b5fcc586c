import { sql } from "kysely";
import type { Kysely, Migration } from "kysely";
import type { StoreDialectName } from "../kysely/dialect-hooks.js";

/**
 * Fills `usage_daily` from every stored usage record, in one statement. Plain SQL that both
 * dialects run as written, kept here once: the migration's backfill and the benchmark's scale
 * seeder (which inserts records straight into SQLite) both run it. Null counts and costs add 0,
 * as in the report; platform records (no key) go under the key `''` (`PLATFORM_KEY_ID`).
 */
export const USAGE_DAILY_BACKFILL_SQL = `insert into usage_daily
  (owner, day, source, provider, model, key_id, requests, input_tokens, output_tokens, cached_input_tokens, cost_nano_usd, unpriced)
select owner, substr(created_at, 1, 10), source, provider, model, coalesce(key_id, ''),
  count(*), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), coalesce(sum(cached_input_tokens), 0),
  coalesce(sum(cost_nano_usd), 0), sum(case when cost_nano_usd is null then 1 else 0 end)
from usage_records
group by owner, substr(created_at, 1, 10), source, provider, model, coalesce(key_id, '')`;

/**
 * A daily roll-up of usage: one row per owner, UTC day (the first ten characters of
 * `created_at`), source, provider, model and key, holding the sums the usage report shows. The
 * usage batch keeps it in step in its own transaction, so a month's report reads about 30 rows
 * per group instead of every record. A primary key cannot hold null on PostgreSQL, so platform
 * records are keyed `''`. On SQLite the table is `WITHOUT ROWID`: the rows live in the primary
 * key's b-tree, so an owner's range of days is one ordered read with no lookup per row.
 */
export function usageDailyMigration(dialect: StoreDialectName): Migration {
  const bigInteger = dialect === "postgres" ? "bigint" : "integer";
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      let table = db.schema
        .createTable("usage_daily")
        .addColumn("owner", "text", (column) => column.notNull())
        .addColumn("day", "text", (column) => column.notNull())
        .addColumn("source", "text", (column) => column.notNull())
        .addColumn("provider", "text", (column) => column.notNull())
        .addColumn("model", "text", (column) => column.notNull())
        .addColumn("key_id", "text", (column) => column.notNull())
        .addColumn("requests", bigInteger, (column) => column.notNull())
        .addColumn("input_tokens", bigInteger, (column) => column.notNull())
        .addColumn("output_tokens", bigInteger, (column) => column.notNull())
        .addColumn("cached_input_tokens", bigInteger, (column) => column.notNull())
        .addColumn("cost_nano_usd", bigInteger, (column) => column.notNull())
        .addColumn("unpriced", bigInteger, (column) => column.notNull())
        .addPrimaryKeyConstraint("usage_daily_pk", ["owner", "day", "source", "provider", "model", "key_id"]);
      if (dialect === "sqlite") table = table.modifyEnd(sql`without rowid`);
      await table.execute();
      await sql.raw(USAGE_DAILY_BACKFILL_SQL).execute(db);
    },

    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable("usage_daily").execute();
    },
  };
}
