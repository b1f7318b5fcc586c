import type { Kysely, Migration } from "kysely";
import type { StoreDialectName } from "../kysely/dialect-hooks.js";

/**
 * Spend limits.
 *
 * `owner_limits`: an owner's monthly budget (hard cap), alert threshold and where alerts go, in
 * integer nano-USD; a missing row means "none of these set".
 *
 * `budget_counters`: what each cap has counted this month, settled spend plus reservations not
 * yet settled, per owner, month (`YYYY-MM`, UTC) and counter (`owner`, `platform`, `key:<id>`).
 * The database ledger (one instance, or several without Redis) reserves here with conditional
 * UPDATEs, so a reservation is on disk before the call goes upstream and survives a crash; a
 * counter is seeded from `usage_daily` when its cap first counts in a month.
 *
 * `budget_notices`: one row per owner, month and notice (`threshold`, `exceeded:<counter>`); its
 * primary key lets exactly one of any number of concurrent calls write the notification event.
 */
export function budgetsMigration(dialect: StoreDialectName): Migration {
  const bigInteger = dialect === "postgres" ? "bigint" : "integer";
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("owner_limits")
        .addColumn("owner", "text", (column) => column.primaryKey())
        .addColumn("monthly_budget_nano_usd", bigInteger)
        .addColumn("notify_threshold_nano_usd", bigInteger)
        .addColumn("notify_email", "text")
        .addColumn("webhook_url", "text")
        .addColumn("updated_at", "text", (column) => column.notNull())
        .execute();
      await db.schema
        .createTable("budget_counters")
        .addColumn("owner", "text", (column) => column.notNull())
        .addColumn("month", "text", (column) => column.notNull())
        .addColumn("counter", "text", (column) => column.notNull())
        .addColumn("spent_nano_usd", bigInteger, (column) => column.notNull())
        .addPrimaryKeyConstraint("budget_counters_pk", ["owner", "month", "counter"])
        .execute();
      await db.schema
        .createTable("budget_notices")
        .addColumn("owner", "text", (column) => column.notNull())
        .addColumn("month", "text", (column) => column.notNull())
        .addColumn("notice", "text", (column) => column.notNull())
        .addColumn("event_id", "text", (column) => column.notNull())
        .addColumn("created_at", "text", (column) => column.notNull())
        .addPrimaryKeyConstraint("budget_notices_pk", ["owner", "month", "notice"])
        .execute();
    },

    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable("budget_notices").execute();
      await db.schema.dropTable("budget_counters").execute();
      await db.schema.dropTable("owner_limits").execute();
    },
  };
}
