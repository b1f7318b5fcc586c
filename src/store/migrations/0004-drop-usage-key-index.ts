import type { Kysely, Migration } from "kysely";
import { sql } from "kysely";

/**
 * Drops the `(key_id, created_at)` index on `usage_records`. Nothing reads usage by key from the
 * raw records: a key's spend over days comes from `usage_daily`, whose primary key starts with
 * (owner, day) and holds the key. The index cost every gateway call an extra b-tree insert and
 * its pages in every usage batch's commit.
 */
export function dropUsageKeyIndexMigration(): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropIndex("usage_records_key_id_created_at").ifExists().execute();
    },

    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createIndex("usage_records_key_id_created_at")
        .on("usage_records")
        .columns(["key_id", "created_at"])
        .where(sql.ref("key_id"), "is not", null)
        .execute();
    },
  };
}
