import { sql } from "kysely";
import type { Kysely, Migration } from "kysely";
import type { StoreDialectName } from "../kysely/dialect-hooks.js";

/**
 * First schema: master-key verifiers, per-owner data keys, provider keys, the audit trail and
 * idempotency records. Timestamps are ISO-8601 text and booleans integer 0/1 on both dialects,
 * so one query layer reads both; money and counters are bigint on PostgreSQL (SQLite's integer
 * is already 64-bit).
 */
export function foundationMigration(dialect: StoreDialectName): Migration {
  const bigInteger = dialect === "postgres" ? "bigint" : "integer";
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("master_keys")
        .addColumn("kid", "text", (column) => column.primaryKey())
        .addColumn("verifier", "text", (column) => column.notNull())
        .addColumn("created_at", "text", (column) => column.notNull())
        .execute();

      await db.schema
        .createTable("data_keys")
        .addColumn("owner", "text", (column) => column.primaryKey())
        .addColumn("kid", "text", (column) => column.notNull())
        .addColumn("wrapped", "text", (column) => column.notNull())
        .addColumn("created_at", "text", (column) => column.notNull())
        .addColumn("updated_at", "text", (column) => column.notNull())
        .execute();
      await db.schema.createIndex("data_keys_kid").on("data_keys").column("kid").execute();

      await db.schema
        .createTable("provider_keys")
        .addColumn("id", "text", (column) => column.primaryKey())
        .addColumn("owner", "text", (column) => column.notNull())
        .addColumn("provider", "text", (column) => column.notNull())
        .addColumn("label", "text", (column) => column.notNull())
        .addColumn("key_hint", "text", (column) => column.notNull())
        .addColumn("fingerprint", "text", (column) => column.notNull())
        .addColumn("ciphertext", "text", (column) => column.notNull())
        .addColumn("status", "text", (column) => column.notNull())
        .addColumn("status_detail", "text")
        .addColumn("status_changed_at", "text", (column) => column.notNull())
        .addColumn("is_active", "integer", (column) => column.notNull().defaultTo(0))
        .addColumn("monthly_limit_nano_usd", bigInteger)
        .addColumn("created_at", "text", (column) => column.notNull())
        .addColumn("updated_at", "text", (column) => column.notNull())
        .addColumn("last_tested_at", "text")
        .addColumn("last_used_at", "text")
        .addColumn("total_requests", bigInteger, (column) => column.notNull().defaultTo(0))
        .addColumn("total_tokens", bigInteger, (column) => column.notNull().defaultTo(0))
        .addColumn("cost_nano_usd", bigInteger, (column) => column.notNull().defaultTo(0))
        .addCheckConstraint("provider_keys_is_active_boolean", sql`is_active in (0, 1)`)
        .execute();
      // Duplicate detection is decided here, not by a read before the insert.
      await db.schema
        .createIndex("provider_keys_owner_fingerprint_unique")
        .unique()
        .on("provider_keys")
        .columns(["owner", "fingerprint"])
        .execute();
      await db.schema.createIndex("provider_keys_owner_provider").on("provider_keys").columns(["owner", "provider"]).execute();
      // The database-level guarantee of at most one active key per owner and provider.
      await db.schema
        .createIndex("provider_keys_one_active")
        .unique()
        .on("provider_keys")
        .columns(["owner", "provider"])
        .where(sql.ref("is_active"), "=", 1)
        .execute();

      await db.schema
        .createTable("audit_events")
        .addColumn("id", "text", (column) => column.primaryKey())
        .addColumn("owner", "text", (column) => column.notNull())
        .addColumn("type", "text", (column) => column.notNull())
        .addColumn("key_id", "text")
        .addColumn("actor", "text", (column) => column.notNull())
        .addColumn("ip", "text")
        .addColumn("user_agent", "text")
        .addColumn("detail", "text", (column) => column.notNull())
        .addColumn("created_at", "text", (column) => column.notNull())
        .execute();
      await db.schema.createIndex("audit_events_owner_id").on("audit_events").columns(["owner", "id"]).execute();

      await db.schema
        .createTable("idempotency_keys")
        .addColumn("owner", "text", (column) => column.notNull())
        .addColumn("key", "text", (column) => column.notNull())
        .addColumn("request_hash", "text", (column) => column.notNull())
        .addColumn("status_code", "integer")
        .addColumn("response_body", "text")
        .addColumn("created_at", "text", (column) => column.notNull())
        .addPrimaryKeyConstraint("idempotency_keys_pk", ["owner", "key"])
        .execute();
      // `expire` deletes by age.
      await db.schema.createIndex("idempotency_keys_created_at").on("idempotency_keys").column("created_at").execute();
    },

    async down(db: Kysely<unknown>): Promise<void> {
      for (const table of ["idempotency_keys", "audit_events", "provider_keys", "data_keys", "master_keys"]) {
        await db.schema.dropTable(table).execute();
      }
    },
  };
}
