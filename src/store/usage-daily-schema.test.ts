import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SqliteDatabase from "better-sqlite3";
import { CompiledQuery, Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from "kysely";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { createTestSchemaName, describePostgres, dropTestSchemas } from "../../test/support/postgres.js";
import { newOwner } from "./fixtures.contract.js";
import type { Database, UsageDailyTable } from "./kysely/schema.js";
import type { StoreDialectName } from "./kysely/dialect-hooks.js";
import { toRow } from "./kysely/usage-repo.js";
import { usageSummaryQuery } from "./kysely/usage-summary.js";
import { createMigrationProvider } from "./migrations/migrations.js";
import type { Store, UsageRecord } from "./ports.js";
import { createPostgresStore } from "./postgres/create-postgres-store.js";
import { createSqliteStore } from "./sqlite/create-sqlite-store.js";
import { createUsageFixture, expectSummariesOfRecords, usageFixtureRanges } from "./usage-summary.contract.js";

/** A month with both edges inside a day: the summary reads the roll-up and raw records at each edge. */
const MONTH_QUERY = { from: "2025-03-01T03:00:00.000Z", to: "2025-03-20T18:00:00.000Z", groupBy: "model" } as const;

type DailyRow = UsageDailyTable;

const DAILY_ROWS_QUERY = "select * from usage_daily order by owner, day, source, provider, model, key_id";

/** `usage_daily` as it must be for these records, computed from them here. */
function expectedDailyRows(records: readonly UsageRecord[]): DailyRow[] {
  const rows = new Map<string, DailyRow>();
  for (const record of records) {
    const key = { owner: record.owner, day: record.createdAt.slice(0, 10), source: record.source, provider: record.provider, model: record.model, key_id: record.keyId ?? "" };
    const id = JSON.stringify(key);
    const row = rows.get(id) ?? { ...key, requests: 0, input_tokens: 0, output_tokens: 0, cached_input_tokens: 0, cost_nano_usd: 0, unpriced: 0 };
    row.requests += 1;
    row.input_tokens += record.inputTokens ?? 0;
    row.output_tokens += record.outputTokens ?? 0;
    row.cached_input_tokens += record.cachedInputTokens ?? 0;
    row.cost_nano_usd += record.costNanoUsd ?? 0;
    if (record.costNanoUsd === null) row.unpriced += 1;
    rows.set(id, row);
  }
  const order = (row: DailyRow): string[] => [row.owner, row.day, row.source, row.provider, row.model, row.key_id];
  return [...rows.values()].sort((a, b) => {
    const [left, right] = [order(a), order(b)];
    const index = left.findIndex((value, position) => value !== right[position]);
    return index === -1 ? 0 : (left[index] as string) < (right[index] as string) ? -1 : 1;
  });
}

/** Applies the migrations up to 0002 only, then stores the records as an older version would have. */
async function storeBeforeRollup(db: Kysely<Database>, dialect: StoreDialectName, records: readonly UsageRecord[], schema?: string): Promise<void> {
  const migrator = new Migrator({ db, provider: createMigrationProvider(dialect), ...(schema === undefined ? {} : { migrationTableSchema: schema }) });
  const { error } = await migrator.migrateTo("0002_usage");
  if (error !== undefined) throw error;
  for (let start = 0; start < records.length; start += 500) {
    await db.insertInto("usage_records").values(records.slice(start, start + 500).map(rowBeforeTier)).execute();
  }
}

/** A record's row as it was stored before the tier column (migration 0009) existed. */
function rowBeforeTier(record: UsageRecord): Omit<ReturnType<typeof toRow>, "tier"> {
  const { tier: _tier, ...row } = toRow(record);
  return row;
}

/** The backfilled roll-up holds every record once, and the report over it equals the raw aggregation. */
async function expectBackfilled(store: Store, dailyRows: DailyRow[], records: readonly UsageRecord[], owners: readonly string[]): Promise<void> {
  expect(dailyRows).toEqual(expectedDailyRows(records));
  // Stored before the tier column (migration 0009): every record reads back with an unknown tier.
  const listed = await store.usage.listByOwner(owners[0] as string, { from: "2000-01-01T00:00:00.000Z", to: "3000-01-01T00:00:00.000Z" });
  expect(listed.length).toBeGreaterThan(0);
  expect(new Set(listed.map((record) => record.tier))).toEqual(new Set([null]));
  await expectSummariesOfRecords(store, records, owners[0] as string, usageFixtureRanges(records).slice(0, 12));
}

describe("usage roll-up on sqlite", () => {
  const directory = mkdtempSync(join(tmpdir(), "keyport-usage-daily-"));
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it("backfills usage_daily from the records stored before the migration", async () => {
    const path = join(directory, "backfill.db");
    const owners = [newOwner(), newOwner()];
    const { records } = createUsageFixture(owners);
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: new SqliteDatabase(path) }) });
    await storeBeforeRollup(db, "sqlite", records);
    await db.destroy();

    const store = await createSqliteStore({ path });
    const raw = new SqliteDatabase(path, { readonly: true });
    try {
      await expectBackfilled(store, raw.prepare(DAILY_ROWS_QUERY).all() as DailyRow[], records, owners);
    } finally {
      raw.close();
      await store.close();
    }
  });

  it("reads whole days from the primary key's range and edge records from the (owner, created_at) index", async () => {
    const path = join(directory, "plan.db");
    await (await createSqliteStore({ path })).close();
    const raw = new SqliteDatabase(path, { readonly: true });
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: raw }) });
    try {
      const query = usageSummaryQuery(db, "user:a", MONTH_QUERY)?.compile();
      expect(query).toBeDefined();
      const plan = raw.prepare(`explain query plan ${query?.sql}`).all(...(query?.parameters ?? []));
      const details = plan.map((step) => (step as { detail: string }).detail).join("\n");
      expect(details).toContain("SEARCH usage_daily USING PRIMARY KEY (owner=? AND day>? AND day<?)");
      expect(details.match(/SEARCH usage_records USING INDEX usage_records_owner_created_at \(owner=\? AND created_at>\? AND created_at<\?\)/g)).toHaveLength(2);
      expect(details).not.toMatch(/SCAN usage_/);
    } finally {
      await db.destroy();
    }
  });
});

await describePostgres("usage roll-up on postgres", (url) => {
  const schemas: string[] = [];
  afterAll(() => dropTestSchemas(url, schemas));
  const connect = (schema: string) => {
    schemas.push(schema);
    return new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1, options: `-c search_path=${schema}` }) }) });
  };

  it("backfills usage_daily from the records stored before the migration", async () => {
    const schema = createTestSchemaName();
    const owners = [newOwner(), newOwner()];
    const { records } = createUsageFixture(owners);
    const db = connect(schema);
    try {
      await db.schema.createSchema(schema).execute();
      await storeBeforeRollup(db, "postgres", records, schema);
    } finally {
      await db.destroy();
    }

    const store = await createPostgresStore({ url, schema });
    const reader = connect(schema);
    try {
      const rows = await sql<Record<keyof DailyRow, string>>`${sql.raw(DAILY_ROWS_QUERY)}`.execute(reader);
      // This plain pool reads int8 as strings.
      const dailyRows = rows.rows.map((row) => ({
        ...row,
        requests: Number(row.requests),
        input_tokens: Number(row.input_tokens),
        output_tokens: Number(row.output_tokens),
        cached_input_tokens: Number(row.cached_input_tokens),
        cost_nano_usd: Number(row.cost_nano_usd),
        unpriced: Number(row.unpriced),
      }));
      await expectBackfilled(store, dailyRows, records, owners);
    } finally {
      await reader.destroy();
      await store.close();
    }
  });

  it("reads whole days from usage_daily's primary key and edge records from the (owner, created_at) index", async () => {
    const schema = createTestSchemaName();
    await (await createPostgresStore({ url, schema })).close();
    const db = connect(schema);
    try {
      const query = usageSummaryQuery(db, "user:a", MONTH_QUERY)?.compile();
      expect(query).toBeDefined();
      const text = await db.connection().execute(async (connection) => {
        // An empty table is always cheaper to scan; forbidding the scan shows the indexes fit.
        await connection.executeQuery(CompiledQuery.raw("set enable_seqscan = off"));
        const plan = await connection.executeQuery<{ "QUERY PLAN": string }>(CompiledQuery.raw(`explain ${query?.sql}`, [...(query?.parameters ?? [])]));
        return plan.rows.map((row) => row["QUERY PLAN"]).join("\n");
      });
      expect(text).toMatch(/Index Scan using usage_daily_pk on usage_daily\b.*\n\s*Index Cond: \(\(owner = [^)]*\) AND \(day >= [^)]*\) AND \(day <= [^)]*\)\)/);
      const edgeScans = /Index Scan using usage_records_owner_created_at on usage_records\b.*\n\s*Index Cond: \(\(owner = [^)]*\) AND \(created_at >= [^)]*\) AND \(created_at < [^)]*\)\)/g;
      expect(text.match(edgeScans)).toHaveLength(2);
      expect(text).not.toMatch(/Seq Scan/);
    } finally {
      await db.destroy();
    }
  });
});
