import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SqliteDatabase from "better-sqlite3";
import { Kysely, PostgresDialect, SqliteDialect } from "kysely";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { createTestSchemaName, describePostgres, dropTestSchemas } from "../../test/support/postgres.js";
import { usageByTierQuery } from "./kysely/operator-repo.js";
import type { Database } from "./kysely/schema.js";
import { createPostgresStore } from "./postgres/create-postgres-store.js";
import { createSqliteStore } from "./sqlite/create-sqlite-store.js";

/** The shape of `UsageRepo.listByOwner`'s query: one owner, one time range, oldest first. */
const OWNER_RANGE_QUERY = "select * from usage_records where owner = $1 and created_at >= $2 and created_at < $3 order by created_at, id";

/** The operator's platform spend per tier over a month: the query compiled for each dialect. */
const TIER_QUERY = { fromDay: "2025-03-01", toDay: "2025-04-01", groupBy: "tier", source: "platform", limit: 101 } as const;

const MONEY_AND_TOKEN_COLUMNS = [
  "cache_write_tokens",
  "cached_input_tokens",
  "cost_nano_usd",
  "input_tokens",
  "output_tokens",
  "price_cache_write",
  "price_cached_input",
  "price_input",
  "price_output",
];

describe("usage schema on sqlite", () => {
  const directory = mkdtempSync(join(tmpdir(), "keyport-usage-schema-"));
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it("answers one owner's time range from the (owner, created_at) index", async () => {
    const path = join(directory, "plan.db");
    await (await createSqliteStore({ path })).close();
    const raw = new SqliteDatabase(path, { readonly: true });
    try {
      const plan = raw.prepare(`explain query plan ${OWNER_RANGE_QUERY.replace(/\$\d/g, "?")}`).all("user:a", "2025-01-01", "2025-02-01");
      const details = plan.map((step) => (step as { detail: string }).detail).join("\n");
      expect(details).toContain("USING INDEX usage_records_owner_created_at (owner=? AND created_at>? AND created_at<?)");
      expect(details).not.toMatch(/SCAN usage_records(?! USING)/);
    } finally {
      raw.close();
    }
  });

  it("reads the records of the operator's tier report as a range of the primary key, not the whole table", async () => {
    const path = join(directory, "tier-plan.db");
    await (await createSqliteStore({ path })).close();
    const raw = new SqliteDatabase(path, { readonly: true });
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: raw }) });
    try {
      const compiled = usageByTierQuery(db, TIER_QUERY).compile();
      const plan = raw.prepare(`explain query plan ${compiled.sql}`).all(...compiled.parameters);
      const details = plan.map((step) => (step as { detail: string }).detail).join("\n");
      expect(details).toContain("USING INDEX sqlite_autoindex_usage_records_1 (id>? AND id<?)");
      expect(details).not.toMatch(/SCAN usage_records(?! USING)/);
    } finally {
      await db.destroy();
    }
  });

  it("keeps only the indexes a query reads: every gateway call pays for each in its usage batch", async () => {
    const path = join(directory, "indexes.db");
    await (await createSqliteStore({ path })).close();
    const raw = new SqliteDatabase(path, { readonly: true });
    try {
      const indexes = raw.prepare("select name from sqlite_master where type = 'index' and tbl_name = 'usage_records' order by name").all();
      // The primary key's own index on id, which makes a retried batch's rows no-ops, and the report's.
      expect(indexes.map((row) => (row as { name: string }).name)).toEqual(["sqlite_autoindex_usage_records_1", "usage_records_owner_created_at"]);
    } finally {
      raw.close();
    }
  });

  it("refuses a record with some but not all unit prices, and a streamed flag other than 0 or 1", async () => {
    const path = join(directory, "checks.db");
    await (await createSqliteStore({ path })).close();
    const raw = new SqliteDatabase(path);
    try {
      const insert = raw.prepare(
        `insert into usage_records (id, owner, source, provider, endpoint, model, status, http_status, latency_ms, streamed, request_id, created_at, price_input)
         values (?, 'user:a', 'platform', 'openai', 'e', 'm', 'ok', 200, 1, ?, 'r', '2025-01-01T00:00:00.000Z', ?)`,
      );
      expect(() => insert.run("use_1", 0, 5)).toThrow(/usage_records_prices_all_or_none/);
      expect(() => insert.run("use_2", 2, null)).toThrow(/usage_records_streamed_boolean/);
      expect(insert.run("use_3", 1, null).changes).toBe(1);
    } finally {
      raw.close();
    }
  });
});

await describePostgres("usage schema on postgres", (url) => {
  const schema = createTestSchemaName();
  afterAll(() => dropTestSchemas(url, [schema]));

  it("stores money, prices and token counts as bigint and can answer an owner's range from its index", async () => {
    await (await createPostgresStore({ url, schema })).close();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const columns = await client.query<{ column_name: string; data_type: string }>(
        "select column_name, data_type from information_schema.columns where table_schema = $1 and table_name = 'usage_records' and data_type = 'bigint' order by column_name",
        [schema],
      );
      expect(columns.rows.map((row) => row.column_name)).toEqual(MONEY_AND_TOKEN_COLUMNS);
      await client.query(`set search_path = "${schema}"`);
      // An empty table is always cheaper to scan; forbidding the scan shows the index fits the query.
      await client.query("set enable_seqscan = off");
      const plan = await client.query<{ "QUERY PLAN": string }>(`explain ${OWNER_RANGE_QUERY}`, ["user:a", "2025-01-01", "2025-02-01"]);
      const text = plan.rows.map((row) => row["QUERY PLAN"]).join("\n");
      expect(text).toContain("usage_records_owner_created_at");
      const indexes = await client.query<{ indexname: string }>("select indexname from pg_indexes where schemaname = $1 and tablename = 'usage_records' order by indexname", [schema]);
      expect(indexes.rows.map((row) => row.indexname)).toEqual(["usage_records_owner_created_at", "usage_records_pkey"]);
      // Compiled only: the pool never connects.
      const compiler = new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1 }) }) });
      const compiled = usageByTierQuery(compiler, TIER_QUERY).compile();
      await compiler.destroy();
      const tierPlan = await client.query<{ "QUERY PLAN": string }>(`explain ${compiled.sql}`, [...compiled.parameters]);
      const tierText = tierPlan.rows.map((row) => row["QUERY PLAN"]).join("\n");
      expect(tierText).toContain("usage_records_pkey");
      expect(tierText).toMatch(/Index Cond: \(\(id >= .*\) AND \(id < .*\)\)/);
    } finally {
      await client.end();
    }
  });
});
