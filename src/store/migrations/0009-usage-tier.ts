import type { Kysely, Migration } from "kysely";

/**
 * The caller's tier on each usage record (`tier`, a configured tier name), so the operator can
 * see the platform key's spend per tier. Nullable: records written before this migration did not
 * know it and stay null ("unknown" in the report). No index: every index is one more b-tree insert
 * per gateway call, and the report reads its days' records as a range of the primary key (ids
 * sort by time).
 */
export function usageTierMigration(): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable("usage_records").addColumn("tier", "text").execute();
    },

    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable("usage_records").dropColumn("tier").execute();
    },
  };
}
