import type { Kysely, Migration } from "kysely";

/**
 * Portal sessions: a one-time link the operator creates for one owner, and the session its
 * opening starts. Only SHA-256 hashes of the link and session tokens are stored, so a copy of
 * the database opens no Settings page. Opening a link is one conditional UPDATE (the link hash,
 * not yet opened, not expired), which decides the race between two openings on any instance.
 */
export function portalSessionsMigration(): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("portal_sessions")
        .addColumn("id", "text", (column) => column.primaryKey())
        .addColumn("link_hash", "text", (column) => column.notNull().unique())
        .addColumn("session_hash", "text", (column) => column.unique())
        .addColumn("owner", "text", (column) => column.notNull())
        .addColumn("sub", "text", (column) => column.notNull())
        .addColumn("tier", "text", (column) => column.notNull())
        .addColumn("return_url", "text")
        .addColumn("theme", "text", (column) => column.notNull())
        .addColumn("created_at", "text", (column) => column.notNull())
        .addColumn("link_expires_at", "text", (column) => column.notNull())
        .addColumn("opened_at", "text")
        .addColumn("session_expires_at", "text")
        .execute();
      // Expired rows are swept by age.
      await db.schema.createIndex("portal_sessions_link_expires_at").on("portal_sessions").column("link_expires_at").execute();
    },

    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable("portal_sessions").execute();
    },
  };
}
