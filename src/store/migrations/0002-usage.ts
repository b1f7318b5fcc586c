import { sql } from "kysely";
import type { Kysely, Migration } from "kysely";
import type { StoreDialectName } from "../kysely/dialect-hooks.js";

/**
 * Usage records: one row per gateway call, with the unit prices it was costed at so a later
 * price-table change never rewrites history. Token counts, cost and prices are nullable because
 * "the provider did not say" and "no price for this model" are not zero. No foreign key to
 * `provider_keys`: deleting a key keeps its usage history.
 */
export function usageMigration(dialect: StoreDialectName): Migration {
  const bigInteger = dialect === "postgres" ? "bigint" : "integer";
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("usage_records")
        .addColumn("id", "text", (column) => column.primaryKey())
        .addColumn("owner", "text", (column) => column.notNull())
        .addColumn("key_id", "text")
        .addColumn("source", "text", (column) => column.notNull())
        .addColumn("provider", "text", (column) => column.notNull())
        .addColumn("endpoint", "text", (column) => column.notNull())
        .addColumn("model", "text", (column) => column.notNull())
        .addColumn("input_tokens", bigInteger)
        .addColumn("output_tokens", bigInteger)
        .addColumn("cached_input_tokens", bigInteger)
        .addColumn("cache_write_tokens", bigInteger)
        .addColumn("cost_nano_usd", bigInteger)
        // Nano-USD per million tokens.
        .addColumn("price_input", bigInteger)
        .addColumn("price_output", bigInteger)
        .addColumn("price_cached_input", bigInteger)
        .addColumn("price_cache_write", bigInteger)
        .addColumn("status", "text", (column) => column.notNull())
        .addColumn("http_status", "integer", (column) => column.notNull())
        .addColumn("latency_ms", "integer", (column) => column.notNull())
        .addColumn("ttfb_ms", "integer")
        .addColumn("streamed", "integer", (column) => column.notNull())
        .addColumn("request_id", "text", (column) => column.notNull())
        .addColumn("created_at", "text", (column) => column.notNull())
        .addCheckConstraint("usage_records_streamed_boolean", sql`streamed in (0, 1)`)
        // A record either kept all four unit prices or none ("no price for this model").
        .addCheckConstraint(
          "usage_records_prices_all_or_none",
          sql`(price_input is null and price_output is null and price_cached_input is null and price_cache_write is null)
            or (price_input is not null and price_output is not null and price_cached_input is not null and price_cache_write is not null)`,
        )
        .execute();
      // Reports read one owner's month: an index range scan, not a scan of every owner's rows.
      await db.schema.createIndex("usage_records_owner_created_at").on("usage_records").columns(["owner", "created_at"]).execute();
      // Per-key spend (a key's monthly limit). Platform calls have no key; leaving them out keeps
      // the index to BYOK traffic.
      await db.schema
        .createIndex("usage_records_key_id_created_at")
        .on("usage_records")
        .columns(["key_id", "created_at"])
        .where(sql.ref("key_id"), "is not", null)
        .execute();
    },

    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable("usage_records").execute();
    },
  };
}
