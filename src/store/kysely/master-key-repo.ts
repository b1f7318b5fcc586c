import type { Kysely } from "kysely";
import type { MasterKeyRepo, MasterKeyRow } from "../ports.js";
import type { Database } from "./schema.js";

/** The shared repository of master-key verifiers (global, not owner-scoped). */
export function createMasterKeyRepo(db: Kysely<Database>): MasterKeyRepo {
  return {
    async list(): Promise<MasterKeyRow[]> {
      const rows = await db.selectFrom("master_keys").selectAll().orderBy("created_at", "asc").orderBy("kid", "asc").execute();
      return rows.map((row) => ({ kid: row.kid, verifier: row.verifier, createdAt: row.created_at }));
    },

    async insert(row: MasterKeyRow): Promise<void> {
      // Several instances booting with the same key all record it; the first one wins.
      await db
        .insertInto("master_keys")
        .values({ kid: row.kid, verifier: row.verifier, created_at: row.createdAt })
        .onConflict((conflict) => conflict.column("kid").doNothing())
        .execute();
    },
  };
}
