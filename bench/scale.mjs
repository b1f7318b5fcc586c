// The scale check (`npm run bench -- --scale`): the same gateway load against an empty store and
// against one holding 100,000 owners' keys and 5 million usage records, plus the time of a month's
// usage report for one owner among them.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import Database from "better-sqlite3";

// Keyport's own backfill of the daily usage roll-up, from the compiled migration, so the SQL is
// written once. Loaded only when built: run.mjs explains a missing dist/ before anything runs.
const rollupMigration = new URL("../dist/store/migrations/0003-usage-daily.js", import.meta.url);
const { USAGE_DAILY_BACKFILL_SQL } = existsSync(rollupMigration) ? await import(rollupMigration.href) : {};

export const SCALE = { owners: 100_000, usageRecords: 5_000_000, benchOwnerRecordsThisMonth: 30_000 };
const REPORT_LIMIT_MS = 50;
const ADDED_P50_GROWTH_LIMIT = 1.1;

/**
 * Creates the schema (`keyport migrate`) and fills it directly with SQLite, before Keyport starts:
 * keys, usage records and the daily roll-up of those records.
 * Keys of other owners carry random ciphertext: they are never opened, only present.
 * @param {{ root: string, dbPath: string, env: Record<string, string>, log: (line: string) => void }} context
 */
export function seedScaleDatabase({ root, dbPath, env, log }) {
  execFileSync(process.execPath, ["bin/keyport.js", "migrate"], { cwd: root, env, stdio: "ignore" });
  const started = Date.now();
  const db = new Database(dbPath);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = OFF");
  const now = Date.now();
  const insertKey = db.prepare(
    `insert into provider_keys (id, owner, provider, label, key_hint, fingerprint, ciphertext, status, status_detail, status_changed_at,
       is_active, monthly_limit_nano_usd, created_at, updated_at, last_tested_at, last_used_at, total_requests, total_tokens, cost_nano_usd)
     values (?, ?, ?, 'Seeded', '****...seed', ?, ?, 'valid', null, ?, 1, null, ?, ?, null, null, 0, 0, 0)`,
  );
  const at = new Date(now).toISOString();
  db.transaction(() => {
    for (let index = 0; index < SCALE.owners; index += 1) {
      const provider = index % 2 === 0 ? "openai" : "anthropic";
      insertKey.run(`key_seed${String(index).padStart(22, "0")}`, `user:scale-${index}`, provider, randomBytes(16).toString("hex"), randomBytes(90).toString("base64url"), at, at, at);
    }
  })();
  const insertUsage = db.prepare(
    `insert into usage_records (id, owner, key_id, source, provider, endpoint, model, input_tokens, output_tokens, cached_input_tokens,
       cache_write_tokens, cost_nano_usd, price_input, price_output, price_cached_input, price_cache_write, status, http_status,
       latency_ms, ttfb_ms, streamed, request_id, created_at)
     values (?, ?, null, 'byok', 'openai', 'chat.completions', ?, 120, 40, 0, null, 42000, 150000000, 600000000, 75000000, 150000000,
       'ok', 200, 12, 10, 0, ?, ?)`,
  );
  const monthStart = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), 1);
  const ninetyDaysMs = 90 * 86_400_000;
  const models = ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "o4-mini"];
  const batch = 200_000;
  for (let offset = 0; offset < SCALE.usageRecords; offset += batch) {
    db.transaction(() => {
      for (let index = offset; index < Math.min(offset + batch, SCALE.usageRecords); index += 1) {
        const isBenchOwner = index < SCALE.benchOwnerRecordsThisMonth;
        const createdAt = isBenchOwner
          ? monthStart + ((index * 7919) % Math.max(1, now - monthStart))
          : now - ((index * 104_729) % ninetyDaysMs);
        const owner = isBenchOwner ? "user:bench" : `user:scale-${index % SCALE.owners}`;
        const id = `use_seed${String(index).padStart(22, "0")}`;
        insertUsage.run(id, owner, models[index % models.length], `req_seed${index}`, new Date(createdAt).toISOString());
      }
    })();
  }
  // The records went in behind Keyport's back: fill the roll-up as the migration does for
  // records stored before it, or the report would not see them.
  db.exec(USAGE_DAILY_BACKFILL_SQL);
  db.pragma("wal_checkpoint(TRUNCATE)");
  db.close();
  log(`  seeded ${SCALE.owners} owners' keys and ${SCALE.usageRecords} usage records in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return { scale: true, owners: SCALE.owners, providerKeys: SCALE.owners, usageRecords: SCALE.usageRecords };
}

/**
 * Times `GET /api/v1/usage` for the benchmark owner's current month (by day and by model), over
 * HTTP, as a client sees it.
 * @param {string} origin @param {string} token
 */
export async function timeUsageReport(origin, token) {
  const samples = [];
  let rows = 0;
  let requests = 0;
  for (let attempt = 0; attempt < 21; attempt += 1) {
    const groupBy = attempt % 2 === 0 ? "day" : "model";
    const started = process.hrtime.bigint();
    const response = await fetch(`${origin}/api/v1/usage?groupBy=${groupBy}`, { headers: { authorization: `Bearer ${token}` } });
    const body = await response.json();
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    if (response.status !== 200) throw new Error(`usage report answered ${response.status}`);
    if (attempt > 0) samples.push(elapsedMs);
    rows = body.series.length;
    requests = body.totals.requests;
  }
  samples.sort((a, b) => a - b);
  return { p50Ms: samples[Math.floor(samples.length / 2)], maxMs: samples[samples.length - 1], seriesRows: rows, requestsInMonth: requests };
}

/**
 * Checks of the scale comparison: Keyport's added p50 at 200 req/s with the seeded store (target
 * `seeded`) within 10% of the empty store's (target `keyport`), both from the same pass, where
 * their runs alternate so that the machine's drift hits both alike; and the month's report under
 * 50 ms.
 * @param {any} summary the aggregated scale pass
 * @param {{ p50Ms: number }} report
 */
export function scaleChecks(summary, report) {
  const addedP50 = (target, caseId) => summary.rows.find((row) => row.mode === "open" && row.case === caseId && row.target === target)?.addedMs.p50 ?? null;
  const checks = [];
  for (const caseId of ["openai-chat", "anthropic-messages"]) {
    const before = addedP50("keyport", caseId);
    const after = addedP50("seeded", caseId);
    // Added latency is a fraction of a millisecond: the denominator is at least 0.05 ms.
    const growth = before === null || after === null ? null : after / Math.max(before, 0.05);
    checks.push({
      name: `added p50 ${caseId}, seeded / empty store (${before?.toFixed(3)} → ${after?.toFixed(3)} ms)`,
      value: growth,
      limit: `≤ ${ADDED_P50_GROWTH_LIMIT}`,
      pass: growth === null ? null : growth <= ADDED_P50_GROWTH_LIMIT,
    });
  }
  checks.push({ name: "month usage report for one owner, p50 (ms)", value: report.p50Ms, limit: `< ${REPORT_LIMIT_MS}`, pass: report.p50Ms < REPORT_LIMIT_MS });
  return checks;
}
