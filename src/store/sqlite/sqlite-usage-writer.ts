import type SqliteDatabase from "better-sqlite3";
import type { Kysely } from "kysely";
import type { UsageRecord } from "../ports.js";
import type { Database } from "../kysely/schema.js";
import { type KeyTotals, totalsPerKey, toRow, type UsageBatchWriter } from "../kysely/usage-repo.js";

/**
 * The usage batch writer for SQLite: the same transaction as the portable writer (insert what is
 * new, add only that to the keys' totals), with statements prepared once. better-sqlite3 runs
 * synchronously on the event loop, so building and preparing a statement per batch through
 * Kysely is CPU every gateway call pays for. The batch runs on Kysely's one connection, taken
 * through `db.connection()`, so it never lands inside another store transaction.
 */
export function createSqliteUsageWriter(db: Kysely<Database>, database: SqliteDatabase.Database): UsageBatchWriter {
  // Prepared on first use from `toRow`'s own columns, so the statement and the portable writer
  // cannot drift apart. Values bind by position: binding by name costs about 1 µs more a row.
  let insert: { statement: SqliteDatabase.Statement; columns: (keyof ReturnType<typeof toRow>)[] } | undefined;
  const insertRow = (row: ReturnType<typeof toRow>): boolean => {
    if (insert === undefined) {
      const columns = Object.keys(row) as (keyof typeof row)[];
      const sql = `insert into usage_records (${columns.join(", ")}) values (${columns.map(() => "?").join(", ")}) on conflict (id) do nothing`;
      insert = { statement: database.prepare(sql), columns };
    }
    const values: unknown[] = [];
    for (const column of insert.columns) values.push(row[column]);
    return insert.statement.run(values).changes === 1;
  };
  // Batches may arrive out of order (a retried one after a newer one): keep the latest time.
  const addTotals = database.prepare(
    `update provider_keys set total_requests = total_requests + ?, total_tokens = total_tokens + ?, cost_nano_usd = cost_nano_usd + ?,
       last_used_at = case when last_used_at is null or last_used_at < ? then ? else last_used_at end
     where owner = ? and id = ?`,
  );
  const write = database.transaction((ordered: readonly UsageRecord[]) => {
    const fresh: UsageRecord[] = [];
    for (const record of ordered) {
      if (insertRow(toRow(record))) fresh.push(record);
    }
    for (const totals of totalsPerKey(fresh)) addTotals.run(...totalsParameters(totals));
  });
  return (ordered) =>
    db.connection().execute(async () => {
      write.immediate(ordered);
    });
}

function totalsParameters(totals: KeyTotals): unknown[] {
  return [totals.requests, totals.tokens, totals.costNanoUsd, totals.lastUsedAt, totals.lastUsedAt, totals.owner, totals.keyId];
}
