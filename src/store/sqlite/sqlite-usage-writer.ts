import type SqliteDatabase from "better-sqlite3";
import type { Kysely } from "kysely";
import type { UsageRecord } from "../ports.js";
import type { Database } from "../kysely/schema.js";
import { type DailyTotals, toDailyRow, totalsPerDay, upsertDailyTotals } from "../kysely/usage-daily.js";
import { type KeyTotals, totalsPerKey, toRow, type UsageBatchWriter } from "../kysely/usage-repo.js";

/**
 * Rows per multi-row INSERT. One statement run per row cost about a microsecond more a row than
 * one per 25 rows; 25 rows bind 600 values, far below SQLite's limit.
 */
const ROWS_PER_STATEMENT = 25;

type Row = ReturnType<typeof toRow>;
type DailyRow = ReturnType<typeof toDailyRow>;
type Column = keyof Row;

/** Thrown inside a batch's transaction when some of its rows were already stored. */
class BatchHadStoredRows extends Error {}

/**
 * The usage batch writer for SQLite: the same transaction as the portable writer (insert what is
 * new, add only that to the keys' totals and the daily roll-up), with statements prepared once.
 * better-sqlite3 runs synchronously on the event loop, so building and preparing a statement per
 * batch through Kysely is CPU every gateway call pays for. The batch runs on Kysely's one connection, taken
 * through `db.connection()`, so it never lands inside another store transaction.
 *
 * Rows go in 25 at a time. Only rows this batch inserted may add to the totals, and a multi-row
 * INSERT reports how many rows it inserted, not which: when a statement inserts fewer than all of
 * its rows (some were stored by an earlier attempt of the batch), the whole transaction is rolled
 * back and the batch written again row by row. That happens only when a batch is retried, so the
 * usual batch pays for no savepoints.
 */
export function createSqliteUsageWriter(db: Kysely<Database>, database: SqliteDatabase.Database): UsageBatchWriter {
  // Prepared on first use from `toRow`'s own columns, so the statements and the portable writer
  // cannot drift apart. Values bind by position: binding by name costs about 1 µs more a row.
  let prepared: { columns: Column[]; single: SqliteDatabase.Statement; chunk: SqliteDatabase.Statement } | undefined;
  const prepare = (row: Row) => {
    const columns = Object.keys(row) as Column[];
    const tuple = `(${columns.map(() => "?").join(", ")})`;
    const insert = (rows: number) =>
      database.prepare(`insert into usage_records (${columns.join(", ")}) values ${Array(rows).fill(tuple).join(", ")} on conflict (id) do nothing`);
    return { columns, single: insert(1), chunk: insert(ROWS_PER_STATEMENT) };
  };
  const valuesOf = (records: readonly UsageRecord[], from: number, to: number): unknown[] => {
    let values: unknown[] | undefined;
    let at = 0;
    for (let index = from; index < to; index += 1) {
      const row = toRow(records[index] as UsageRecord);
      prepared ??= prepare(row);
      // Sized once: 25 rows bind 600 values, and growing the array by push copied it several times.
      values ??= new Array<unknown>((to - from) * prepared.columns.length);
      for (const column of prepared.columns) values[at++] = row[column];
    }
    return values ?? [];
  };
  // Only after `valuesOf` ran, which prepares the statements from the first row.
  const statements = () => prepared as NonNullable<typeof prepared>;
  const insertOne = (record: UsageRecord): boolean => {
    const values = valuesOf([record], 0, 1);
    return statements().single.run(values).changes === 1;
  };
  // Batches may arrive out of order (a retried one after a newer one): keep the latest time.
  const addTotals = database.prepare(
    `update provider_keys set total_requests = total_requests + ?, total_tokens = total_tokens + ?, cost_nano_usd = cost_nano_usd + ?,
       last_used_at = case when last_used_at is null or last_used_at < ? then ? else last_used_at end
     where owner = ? and id = ?`,
  );
  const addToDay = prepareDailyUpsert(db, database);
  const addToTotals = (fresh: readonly UsageRecord[]): void => {
    for (const totals of totalsPerKey(fresh)) addTotals.run(...totalsParameters(totals));
    for (const totals of totalsPerDay(fresh)) addToDay(totals);
  };
  // The usual batch: every row is new. A statement that inserts fewer rows than it holds throws,
  // which rolls the whole transaction back.
  const writeAllNew = database.transaction((ordered: readonly UsageRecord[]) => {
    let start = 0;
    for (; start + ROWS_PER_STATEMENT <= ordered.length; start += ROWS_PER_STATEMENT) {
      const values = valuesOf(ordered, start, start + ROWS_PER_STATEMENT);
      if (statements().chunk.run(values).changes !== ROWS_PER_STATEMENT) throw new BatchHadStoredRows();
    }
    for (; start < ordered.length; start += 1) {
      if (!insertOne(ordered[start] as UsageRecord)) throw new BatchHadStoredRows();
    }
    addToTotals(ordered);
  });
  // A retried batch: row by row, so the totals take exactly the rows this attempt inserted.
  const writeRowByRow = database.transaction((ordered: readonly UsageRecord[]) => {
    const fresh: UsageRecord[] = [];
    for (const record of ordered) if (insertOne(record)) fresh.push(record);
    addToTotals(fresh);
  });
  const write = (ordered: readonly UsageRecord[]): void => {
    try {
      writeAllNew.immediate(ordered);
    } catch (error) {
      if (!(error instanceof BatchHadStoredRows)) throw error;
      writeRowByRow.immediate(ordered);
    }
  };
  return (ordered) =>
    db.connection().execute(async () => {
      write(ordered);
    });
}

function totalsParameters(totals: KeyTotals): unknown[] {
  return [totals.requests, totals.tokens, totals.costNanoUsd, totals.lastUsedAt, totals.lastUsedAt, totals.owner, totals.keyId];
}

/**
 * The portable writer's roll-up upsert, compiled by Kysely and prepared on first use from the
 * first group's own row; each group's values bind by position in the order of `toDailyRow`'s
 * columns, which is the order Kysely compiled them in.
 */
function prepareDailyUpsert(db: Kysely<Database>, database: SqliteDatabase.Database): (totals: DailyTotals) => void {
  let prepared: { columns: (keyof DailyRow)[]; upsert: SqliteDatabase.Statement } | undefined;
  return (totals) => {
    const row = toDailyRow(totals);
    prepared ??= { columns: Object.keys(row) as (keyof DailyRow)[], upsert: database.prepare(upsertDailyTotals(db, row).compile().sql) };
    prepared.upsert.run(prepared.columns.map((column) => row[column]));
  };
}
