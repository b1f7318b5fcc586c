import { PROVIDER_IDS } from "../lib/domain.js";
import type { UnitPrices, UsageRecord, UsageSource, UsageStatus } from "../store/ports.js";

const SOURCES: readonly UsageSource[] = ["byok", "platform"];
const STATUSES: readonly UsageStatus[] = ["ok", "error", "partial", "client_aborted", "shutdown_cut", "recovered"];

/** Longest stored model, endpoint or request id; longer ones are cut. */
export const MAX_TEXT_LENGTH = 256;

/** The store's timestamp format: ISO-8601 UTC with milliseconds, which sorts as text. */
const TIMESTAMP_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export type RecordCheck = { ok: true; record: UsageRecord } | { ok: false; reason: string };

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** A count the provider (or the adapter) got wrong is "not reported", not a reason to lose the call. */
function toNullableCount(value: number | null): number | null {
  return isCount(value) ? value : null;
}

function isIdentifier(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_TEXT_LENGTH && !value.includes("\u0000");
}

/**
 * Model names and request ids may come from the client's request. PostgreSQL text cannot hold
 * NUL, so one such character would make every retry of the batch fail; it is removed instead.
 */
function toStoredText(value: string): string {
  const clean = value.replaceAll("\u0000", "");
  return clean.length > MAX_TEXT_LENGTH ? clean.slice(0, MAX_TEXT_LENGTH) : clean;
}

/**
 * A record journaled before tiers were recorded has no `tier`; one that is not a name the store
 * can hold is unknown too. Neither is a reason to lose the call.
 */
function toTier(tier: string | null | undefined): string | null {
  return isIdentifier(tier) ? tier : null;
}

function toPrices(prices: UnitPrices | null): UnitPrices | null {
  if (prices === null) return null;
  const { inputNanoUsdPerMTok, outputNanoUsdPerMTok, cachedInputNanoUsdPerMTok, cacheWriteNanoUsdPerMTok } = prices;
  if (![inputNanoUsdPerMTok, outputNanoUsdPerMTok, cachedInputNanoUsdPerMTok, cacheWriteNanoUsdPerMTok].every(isCount)) return null;
  return { inputNanoUsdPerMTok, outputNanoUsdPerMTok, cachedInputNanoUsdPerMTok, cacheWriteNanoUsdPerMTok };
}

function firstProblem(record: UsageRecord): string | undefined {
  if (!isIdentifier(record.id)) return "id";
  if (!isIdentifier(record.owner)) return "owner";
  if (record.keyId !== null && !isIdentifier(record.keyId)) return "keyId";
  if (!SOURCES.includes(record.source)) return "source";
  if (!PROVIDER_IDS.includes(record.provider)) return "provider";
  if (!STATUSES.includes(record.status)) return "status";
  if (typeof record.endpoint !== "string" || typeof record.model !== "string" || typeof record.requestId !== "string") return "text field";
  if (!isCount(record.httpStatus) || record.httpStatus > 999) return "httpStatus";
  if (!isCount(record.latencyMs)) return "latencyMs";
  if (typeof record.streamed !== "boolean") return "streamed";
  if (typeof record.createdAt !== "string" || !TIMESTAMP_PATTERN.test(record.createdAt)) return "createdAt";
  return undefined;
}

/**
 * Checks a record before it is queued, so a batch the database would refuse never blocks the
 * queue: a record with a bad identity (id, owner, enum, time) is refused; bad counts become
 * null (unknown); text the database cannot hold is cleaned. Returns a copy, so the caller
 * changing its object later does not change what is written.
 */
export function checkUsageRecord(record: UsageRecord): RecordCheck {
  const problem = firstProblem(record);
  if (problem !== undefined) return { ok: false, reason: `invalid ${problem}` };
  return {
    ok: true,
    // Every field written out (no spread): this runs once per gateway call.
    record: {
      id: record.id,
      owner: record.owner,
      keyId: record.keyId,
      source: record.source,
      tier: toTier(record.tier),
      provider: record.provider,
      endpoint: toStoredText(record.endpoint),
      model: toStoredText(record.model),
      inputTokens: toNullableCount(record.inputTokens),
      outputTokens: toNullableCount(record.outputTokens),
      cachedInputTokens: toNullableCount(record.cachedInputTokens),
      cacheWriteTokens: toNullableCount(record.cacheWriteTokens),
      costNanoUsd: toNullableCount(record.costNanoUsd),
      prices: toPrices(record.prices),
      status: record.status,
      httpStatus: record.httpStatus,
      latencyMs: record.latencyMs,
      ttfbMs: toNullableCount(record.ttfbMs),
      streamed: record.streamed,
      requestId: toStoredText(record.requestId),
      createdAt: record.createdAt,
    },
  };
}
