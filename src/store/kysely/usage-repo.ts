import type { Insertable, Kysely, Selectable, Transaction } from "kysely";
import { PROVIDER_IDS } from "../../lib/domain.js";
import type { UnitPrices, UsageRecord, UsageRepo, UsageSource, UsageStatus } from "../ports.js";
import { toBoolean, toMember, toNullableSafeInteger, toSafeInteger } from "./row-values.js";
import type { Database, UsageRecordsTable } from "./schema.js";
import { toDailyRow, totalsPerDay, upsertDailyTotals } from "./usage-daily.js";
import { summarizeUsage } from "./usage-summary.js";

const USAGE_SOURCES = ["byok", "platform"] as const satisfies readonly UsageSource[];
const USAGE_STATUSES = ["ok", "error", "partial", "client_aborted", "shutdown_cut", "recovered"] as const satisfies readonly UsageStatus[];
/** The name `client_aborted` had before it was renamed; older rows still hold it. */
const LEGACY_CLIENT_ABORTED = "aborted";

/**
 * Rows per INSERT statement: 24 parameters a row stays well under SQLite's 32,766 and
 * PostgreSQL's 65,535 bound parameters per statement.
 */
const ROWS_PER_INSERT = 500;

function toUnitPrices(row: Selectable<UsageRecordsTable>): UnitPrices | null {
  const input = toNullableSafeInteger(row.price_input, "usage_records.price_input");
  const output = toNullableSafeInteger(row.price_output, "usage_records.price_output");
  const cachedInput = toNullableSafeInteger(row.price_cached_input, "usage_records.price_cached_input");
  const cacheWrite = toNullableSafeInteger(row.price_cache_write, "usage_records.price_cache_write");
  if (input === null && output === null && cachedInput === null && cacheWrite === null) return null;
  if (input === null || output === null || cachedInput === null || cacheWrite === null) {
    throw new Error("Columns usage_records.price_* are partly null");
  }
  return { inputNanoUsdPerMTok: input, outputNanoUsdPerMTok: output, cachedInputNanoUsdPerMTok: cachedInput, cacheWriteNanoUsdPerMTok: cacheWrite };
}

/** Maps a `usage_records` row to the port shape, field by field. */
function toUsageRecord(row: Selectable<UsageRecordsTable>): UsageRecord {
  return {
    id: row.id,
    owner: row.owner,
    keyId: row.key_id,
    source: toMember(row.source, USAGE_SOURCES, "usage_records.source"),
    tier: row.tier,
    provider: toMember(row.provider, PROVIDER_IDS, "usage_records.provider"),
    endpoint: row.endpoint,
    model: row.model,
    inputTokens: toNullableSafeInteger(row.input_tokens, "usage_records.input_tokens"),
    outputTokens: toNullableSafeInteger(row.output_tokens, "usage_records.output_tokens"),
    cachedInputTokens: toNullableSafeInteger(row.cached_input_tokens, "usage_records.cached_input_tokens"),
    cacheWriteTokens: toNullableSafeInteger(row.cache_write_tokens, "usage_records.cache_write_tokens"),
    costNanoUsd: toNullableSafeInteger(row.cost_nano_usd, "usage_records.cost_nano_usd"),
    prices: toUnitPrices(row),
    status: toMember(row.status === LEGACY_CLIENT_ABORTED ? "client_aborted" : row.status, USAGE_STATUSES, "usage_records.status"),
    httpStatus: toSafeInteger(row.http_status, "usage_records.http_status"),
    latencyMs: toSafeInteger(row.latency_ms, "usage_records.latency_ms"),
    ttfbMs: toNullableSafeInteger(row.ttfb_ms, "usage_records.ttfb_ms"),
    streamed: toBoolean(row.streamed, "usage_records.streamed"),
    requestId: row.request_id,
    createdAt: row.created_at,
  };
}

export function toRow(record: UsageRecord): Insertable<UsageRecordsTable> {
  return {
    id: record.id,
    owner: record.owner,
    key_id: record.keyId,
    source: record.source,
    tier: record.tier,
    provider: record.provider,
    endpoint: record.endpoint,
    model: record.model,
    input_tokens: record.inputTokens,
    output_tokens: record.outputTokens,
    cached_input_tokens: record.cachedInputTokens,
    cache_write_tokens: record.cacheWriteTokens,
    cost_nano_usd: record.costNanoUsd,
    price_input: record.prices?.inputNanoUsdPerMTok ?? null,
    price_output: record.prices?.outputNanoUsdPerMTok ?? null,
    price_cached_input: record.prices?.cachedInputNanoUsdPerMTok ?? null,
    price_cache_write: record.prices?.cacheWriteNanoUsdPerMTok ?? null,
    status: record.status,
    http_status: record.httpStatus,
    latency_ms: record.latencyMs,
    ttfb_ms: record.ttfbMs,
    streamed: record.streamed ? 1 : 0,
    request_id: record.requestId,
    created_at: record.createdAt,
  };
}

/** What a batch adds to one key's running totals. */
export type KeyTotals = { owner: string; keyId: string; requests: number; tokens: number; costNanoUsd: number; lastUsedAt: string };

/** Sums the inserted records per (owner, key); platform records (no key) add to nothing. */
export function totalsPerKey(records: readonly UsageRecord[]): KeyTotals[] {
  const totals = new Map<string, KeyTotals>();
  for (const record of records) {
    if (record.keyId === null) continue;
    // A key id paired with an owner it does not belong to matches no row in the UPDATE below.
    // The owner's length first makes the key unambiguous whatever characters the two hold.
    const mapKey = `${record.owner.length}:${record.owner}:${record.keyId}`;
    const current = totals.get(mapKey) ?? { owner: record.owner, keyId: record.keyId, requests: 0, tokens: 0, costNanoUsd: 0, lastUsedAt: record.createdAt };
    current.requests += 1;
    current.tokens += (record.inputTokens ?? 0) + (record.outputTokens ?? 0);
    // Unknown cost adds nothing: the total is a lower bound, and the record keeps its null.
    current.costNanoUsd += record.costNanoUsd ?? 0;
    if (record.createdAt > current.lastUsedAt) current.lastUsedAt = record.createdAt;
    totals.set(mapKey, current);
  }
  // One lock order for every writer, so two instances updating the same keys cannot deadlock.
  return [...totals.values()].sort((a, b) => (a.keyId < b.keyId ? -1 : a.keyId > b.keyId ? 1 : 0));
}

/** Inserts the rows not yet stored and returns the ids this call actually inserted. */
async function insertNew(tx: Transaction<Database>, records: readonly UsageRecord[]): Promise<Set<string>> {
  const inserted = new Set<string>();
  for (let start = 0; start < records.length; start += ROWS_PER_INSERT) {
    const chunk = records.slice(start, start + ROWS_PER_INSERT);
    // RETURNING lists only the rows this statement inserted; a conflicting id was stored
    // earlier (a retried batch) and was counted then.
    const rows = await tx
      .insertInto("usage_records")
      .values(chunk.map(toRow))
      .onConflict((conflict) => conflict.column("id").doNothing())
      .returning("id")
      .execute();
    for (const row of rows) inserted.add(row.id);
  }
  return inserted;
}

async function addToKeyTotals(tx: Transaction<Database>, totals: KeyTotals): Promise<void> {
  await tx
    .updateTable("provider_keys")
    .set((eb) => ({
      total_requests: eb("total_requests", "+", totals.requests),
      total_tokens: eb("total_tokens", "+", totals.tokens),
      cost_nano_usd: eb("cost_nano_usd", "+", totals.costNanoUsd),
      // Batches may arrive out of order (a retried one after a newer one): keep the latest time.
      last_used_at: eb
        .case()
        .when("last_used_at", "is", null)
        .then(totals.lastUsedAt)
        .when("last_used_at", "<", totals.lastUsedAt)
        .then(totals.lastUsedAt)
        .else(eb.ref("last_used_at"))
        .end(),
    }))
    .where("owner", "=", totals.owner)
    .where("id", "=", totals.keyId)
    .execute();
}

/**
 * Writes one batch in one transaction: the records not yet stored, then their keys' totals and
 * their days' roll-up (`usage_daily`), both from those new records only. `ordered` holds unique
 * ids in ascending order (one lock order for concurrent writers).
 */
export type UsageBatchWriter = (ordered: readonly UsageRecord[]) => Promise<void>;

/** The portable writer: Kysely statements in one transaction, for any dialect. */
function createKyselyUsageBatchWriter(db: Kysely<Database>): UsageBatchWriter {
  return async (ordered) => {
    await db.transaction().execute(async (tx) => {
      const inserted = await insertNew(tx, ordered);
      const fresh = ordered.filter((record) => inserted.has(record.id));
      for (const totals of totalsPerKey(fresh)) await addToKeyTotals(tx, totals);
      for (const totals of totalsPerDay(fresh)) await upsertDailyTotals(tx, toDailyRow(totals)).execute();
    });
  };
}

/**
 * The shared usage repository. Each batch is one transaction: the insert, the key totals and the
 * daily roll-up commit together, and only records this call inserted are added to the totals and
 * the roll-up, so a batch retried after a lost acknowledgement never counts twice. On SQLite the
 * transaction holds the single writer lock (`BEGIN IMMEDIATE`), so batches are kept to plain
 * inserts, one short UPDATE per key and one upsert per roll-up row. A dialect may bring its own
 * `writeBatch` with the same contract (SQLite does: prepared statements, since the batch insert
 * runs on the event loop).
 */
export function createUsageRepo(db: Kysely<Database>, writeBatch: UsageBatchWriter = createKyselyUsageBatchWriter(db)): UsageRepo {
  return {
    async insertBatch(records: readonly UsageRecord[]): Promise<void> {
      // First occurrence of an id wins, as it would across two batches. Sorted by id so
      // concurrent batches take row locks in one order.
      const byId = new Map<string, UsageRecord>();
      for (const record of records) if (!byId.has(record.id)) byId.set(record.id, record);
      const ordered = [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      if (ordered.length === 0) return;
      await writeBatch(ordered);
    },

    async listByOwner(owner: string, range: { from: string; to: string }): Promise<UsageRecord[]> {
      const rows = await db
        .selectFrom("usage_records")
        .selectAll()
        .where("owner", "=", owner)
        .where("created_at", ">=", range.from)
        .where("created_at", "<", range.to)
        .orderBy("created_at", "asc")
        .orderBy("id", "asc")
        .execute();
      return rows.map(toUsageRecord);
    },

    summarize: (owner, query) => summarizeUsage(db, owner, query),

    async count(): Promise<number> {
      const row = await db
        .selectFrom("usage_records")
        .select((eb) => eb.fn.countAll().as("count"))
        .executeTakeFirstOrThrow();
      return toSafeInteger(row.count, "count");
    },
  };
}
