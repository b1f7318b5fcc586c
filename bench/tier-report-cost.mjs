// The operator report by tier (`GET /api/v1/admin/usage?groupBy=tier&source=platform`) at scale,
// measured alone: `npm run build && node bench/tier-report-cost.mjs [records-per-month]`, on
// SQLite, and also on PostgreSQL when DATABASE_URL is set (in a schema of its own, dropped after).
// It reads raw usage records (the daily roll-up holds no tier) as a range of the primary key, so
// its time grows with the records of the range; the records of other months are not read.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { newId } from "../dist/lib/ids.js";
import { createPostgresStore } from "../dist/store/postgres/create-postgres-store.js";
import { createSqliteStore } from "../dist/store/sqlite/create-sqlite-store.js";

const perMonth = Number(process.argv[2] ?? 1_000_000);
const tiers = ["community", "subscriber", "premium", "lifetime", null];
const months = [Date.UTC(2026, 9, 1), Date.UTC(2026, 10, 1)];
const monthMs = 30 * 86_400_000;
const COLUMNS = "id, owner, source, tier, created_at";

/** Two months of records, the one reported and the one before it (which the id range skips), in chunks. */
function* chunks(size) {
  for (const start of months) {
    for (let offset = 0; offset < perMonth; offset += size) {
      const chunk = [];
      for (let index = offset; index < Math.min(offset + size, perMonth); index += 1) {
        const time = start + Math.floor((index / perMonth) * monthMs);
        // Three of four calls on the platform key, every tier (and none) among them.
        chunk.push([newId("use", time), `user:bench-${index % 100_000}`, index % 4 === 3 ? "byok" : "platform", tiers[index % tiers.length], new Date(time).toISOString()]);
      }
      yield chunk;
    }
  }
}

const FIXED = `null, 'openai', 'chat.completions', 'gpt-4o-mini', 120, 40, 0, null, 42000, 150000000, 600000000, 75000000, 150000000, 'ok', 200, 12, 10, 0, 'req_bench'`;
const FIXED_COLUMNS = `key_id, provider, endpoint, model, input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, cost_nano_usd,
  price_input, price_output, price_cached_input, price_cache_write, status, http_status, latency_ms, ttfb_ms, streamed, request_id`;

async function measure(label, store) {
  const report = { groupBy: "tier", source: "platform", limit: 101 };
  const time = async (what, query) => {
    await store.operator.usage(query);
    const runs = [];
    let rows = [];
    for (let run = 0; run < 5; run += 1) {
      const t0 = process.hrtime.bigint();
      rows = await store.operator.usage(query);
      runs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    runs.sort((a, b) => a - b);
    const groups = rows.map((row) => `${row.group} ${row.requests}`).join(", ");
    console.log(`${label}, ${what}: median ${runs[2].toFixed(0)} ms (min ${runs[0].toFixed(0)}, max ${runs[4].toFixed(0)}); ${groups}`);
  };
  await time(`a month (${perMonth} records in it, as many in the month before)`, { ...report, fromDay: "2026-11-01", toDay: "2026-12-01" });
  await time("one day of it", { ...report, fromDay: "2026-11-15", toDay: "2026-11-16" });
}

{
  const dir = mkdtempSync(path.join(tmpdir(), "tier-cost-"));
  const dbPath = path.join(dir, "keyport.db");
  await (await createSqliteStore({ path: dbPath })).close();
  const db = new Database(dbPath);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = OFF");
  const insert = db.prepare(`insert into usage_records (${COLUMNS}, ${FIXED_COLUMNS}) values (?, ?, ?, ?, ?, ${FIXED})`);
  const seeded = Date.now();
  for (const chunk of chunks(100_000)) db.transaction(() => chunk.forEach((row) => insert.run(...row)))();
  db.close();
  console.log(`sqlite: seeded ${2 * perMonth} records in ${((Date.now() - seeded) / 1000).toFixed(1)} s`);
  const store = await createSqliteStore({ path: dbPath });
  await measure("sqlite", store);
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}

const url = process.env.DATABASE_URL;
if (url !== undefined && url !== "") {
  const schema = `bench_tier_${randomBytes(6).toString("hex")}`;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await (await createPostgresStore({ url, schema })).close();
    const seeded = Date.now();
    for (const chunk of chunks(50_000)) {
      const columns = [0, 1, 2, 3, 4].map((at) => chunk.map((row) => row[at]));
      await client.query(
        `insert into "${schema}".usage_records (${COLUMNS}, ${FIXED_COLUMNS})
         select id, owner, source, tier, created_at, ${FIXED} from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) as t(id, owner, source, tier, created_at)`,
        columns,
      );
    }
    await client.query(`analyze "${schema}".usage_records`);
    console.log(`postgres: seeded ${2 * perMonth} records in ${((Date.now() - seeded) / 1000).toFixed(1)} s`);
    const store = await createPostgresStore({ url, schema });
    await measure("postgres", store);
    await store.close();
  } finally {
    await client.query(`drop schema if exists "${schema}" cascade`);
    await client.end();
  }
}
