import { sql } from "kysely";
import type { Kysely, Migration } from "kysely";

/**
 * The notification outbox and the owners' webhook signing secrets.
 *
 * `notification_deliveries` holds one row per notification event and target (the owner's
 * webhook, the operator's webhook, email). Rows are written in the same transaction as the
 * event's `audit_events` row, so an event is never stored without its deliveries nor the other
 * way round. A worker claims a due row by setting `claimed_until` (a lease) and `claim_token`
 * with one conditional UPDATE, so on PostgreSQL exactly one instance gets each row; it records
 * the outcome only while its token is still there. Events stored before this migration get no
 * rows: upgrading does not send the past.
 *
 * `webhook_secrets` holds each owner's `whsec_` secret sealed with the owner's data key; after a
 * rotation the previous one is kept until `previous_expires_at`, and deliveries are signed with
 * both meanwhile.
 */
export function notificationsMigration(): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("notification_deliveries")
        .addColumn("event_id", "text", (column) => column.notNull())
        .addColumn("target", "text", (column) => column.notNull())
        .addColumn("state", "text", (column) => column.notNull())
        .addColumn("attempts", "integer", (column) => column.notNull().defaultTo(0))
        .addColumn("next_attempt_at", "text")
        .addColumn("claimed_until", "text")
        .addColumn("claim_token", "text")
        .addColumn("last_attempt_at", "text")
        .addColumn("last_error", "text")
        .addColumn("delivered_at", "text")
        .addColumn("created_at", "text", (column) => column.notNull())
        .addPrimaryKeyConstraint("notification_deliveries_pk", ["event_id", "target"])
        .addCheckConstraint("notification_deliveries_state", sql`state in ('pending', 'delivered', 'failed', 'skipped')`)
        .execute();
      // The workers' poll: due rows only, in the order they fall due.
      await db.schema
        .createIndex("notification_deliveries_due")
        .on("notification_deliveries")
        .column("next_attempt_at")
        .where(sql.ref("state"), "=", "pending")
        .execute();

      await db.schema
        .createTable("webhook_secrets")
        .addColumn("owner", "text", (column) => column.primaryKey())
        .addColumn("sealed", "text", (column) => column.notNull())
        .addColumn("previous_sealed", "text")
        .addColumn("previous_expires_at", "text")
        .addColumn("created_at", "text", (column) => column.notNull())
        .addColumn("rotated_at", "text")
        .execute();
    },

    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable("webhook_secrets").execute();
      await db.schema.dropTable("notification_deliveries").execute();
    },
  };
}
