import SqliteDatabase from "better-sqlite3";
import { Kysely, SqliteDialect } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { migrateToLatest } from "../migrations/migrations.js";
import { newOwner, newUsageRecord } from "../fixtures.contract.js";
import type { Database } from "../kysely/schema.js";
import { createSqliteUsageWriter } from "./sqlite-usage-writer.js";

const opened: Kysely<Database>[] = [];

afterEach(async () => {
  await Promise.all(opened.splice(0).map((db) => db.destroy()));
});

async function openMigrated(): Promise<{ db: Kysely<Database>; database: SqliteDatabase.Database }> {
  const database = new SqliteDatabase(":memory:");
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
  opened.push(db);
  await migrateToLatest(db, "sqlite");
  return { db, database };
}

describe("SQLite usage writer", () => {
  it("waits for a store transaction in progress instead of writing inside it, so that transaction's rollback keeps the records", async () => {
    const { db, database } = await openMigrated();
    const write = createSqliteUsageWriter(db, database);
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let isInside = false;
    const transaction = db.transaction().execute(async (tx) => {
      await tx.selectFrom("usage_records").select("id").execute();
      isInside = true;
      await gate;
      throw new Error("rolled back on purpose");
    });
    while (!isInside) await new Promise((resolve) => setImmediate(resolve));

    const owner = newOwner();
    const written = write([newUsageRecord(owner, null), newUsageRecord(owner, null)]);
    await new Promise((resolve) => setImmediate(resolve));
    // Still waiting for the connection: nothing may be in the open transaction.
    expect(database.prepare("select count(*) as n from usage_records").get()).toEqual({ n: 0 });
    release();
    await expect(transaction).rejects.toThrow("rolled back on purpose");
    await written;
    expect(database.prepare("select count(*) as n from usage_records").get()).toEqual({ n: 2 });
  });
});
