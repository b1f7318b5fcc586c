import { type Kysely, type Selectable, sql } from "kysely";
import type { DataKeyRepo, DataKeyRow } from "../ports.js";
import { toRowLimit, toSafeInteger } from "./row-values.js";
import type { Database, DataKeysTable } from "./schema.js";

function toDataKeyRow(row: Selectable<DataKeysTable>): DataKeyRow {
  return {
    owner: row.owner,
    kid: row.kid,
    wrapped: row.wrapped,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** The shared per-owner data-key repository. */
export function createDataKeyRepo(db: Kysely<Database>): DataKeyRepo {
  const find = async (owner: string): Promise<DataKeyRow | undefined> => {
    const row = await db.selectFrom("data_keys").selectAll().where("owner", "=", owner).executeTakeFirst();
    return row === undefined ? undefined : toDataKeyRow(row);
  };

  return {
    find,

    async insertIfAbsent(row: DataKeyRow): Promise<DataKeyRow | undefined> {
      // Two first requests of one owner may race; both must end up with the same data key. The
      // `not exists` guard sits in the insert itself, so no check-then-insert gap is left open.
      // (SQLite needs the WHERE clause anyway: without one, `on conflict` after a SELECT is ambiguous.)
      await db
        .insertInto("data_keys")
        .columns(["owner", "kid", "wrapped", "created_at", "updated_at"])
        .expression(
          db
            .selectNoFrom([
              sql<string>`${row.owner}`.as("owner"),
              sql<string>`${row.kid}`.as("kid"),
              sql<string>`${row.wrapped}`.as("wrapped"),
              sql<string>`${row.createdAt}`.as("created_at"),
              sql<string>`${row.updatedAt}`.as("updated_at"),
            ])
            .where(({ not, exists, selectFrom }) =>
              not(exists(selectFrom("provider_keys").select(sql.lit(1).as("one")).where("provider_keys.owner", "=", row.owner))),
            ),
        )
        .onConflict((conflict) => conflict.column("owner").doNothing())
        .execute();
      // Undefined here means the guard refused: data keys are never deleted by Keyport.
      return find(row.owner);
    },

    async listNotWrappedBy(kid: string, afterOwner: string | undefined, limit: number): Promise<DataKeyRow[]> {
      const rowLimit = toRowLimit(limit);
      if (rowLimit === 0) return [];
      let query = db.selectFrom("data_keys").selectAll().where("kid", "!=", kid);
      if (afterOwner !== undefined) query = query.where("owner", ">", afterOwner);
      const rows = await query.orderBy("owner", "asc").limit(rowLimit).execute();
      return rows.map(toDataKeyRow);
    },

    async rewrap(owner: string, expectedWrapped: string, next: { kid: string; wrapped: string; at: string }): Promise<boolean> {
      const result = await db
        .updateTable("data_keys")
        .set({ kid: next.kid, wrapped: next.wrapped, updated_at: next.at })
        .where("owner", "=", owner)
        .where("wrapped", "=", expectedWrapped)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async countByKid(): Promise<Record<string, number>> {
      const rows = await db
        .selectFrom("data_keys")
        .select((eb) => ["kid", eb.fn.countAll().as("count")])
        .groupBy("kid")
        .orderBy("kid")
        .execute();
      return Object.fromEntries(rows.map((row) => [row.kid, toSafeInteger(row.count, "count")]));
    },
  };
}
