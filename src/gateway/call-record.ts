import type { ProviderId } from "../lib/domain.js";
import { newId } from "../lib/ids.js";
import { NO_USAGE, type Usage } from "../lib/usage.js";
import type { UnitPrices, UsageRecord, UsageSource, UsageStatus } from "../store/ports.js";

/** What one gateway call learnt on its way, turned into a usage record at the end. */
export type CallFacts = {
  owner: string;
  provider: ProviderId;
  endpoint: string;
  requestId: string;
  startedAtMs: number;
  createdAt: Date;
  source: UsageSource | undefined;
  keyId: string | null;
  requestedModel: string | undefined;
  reportedModel: string | undefined;
  streamed: boolean;
  /** At least one attempt reached the provider: only such calls are recorded. */
  wentUpstream: boolean;
  httpStatus: number;
  status: UsageStatus;
  usage: Usage;
  ttfbMs: number | null;
};

/** Every field is written out (no spread): an object built one shape at a time is cheaper per call. */
export function newCallFacts(fields: Pick<CallFacts, "owner" | "provider" | "endpoint" | "requestId" | "startedAtMs" | "createdAt">): CallFacts {
  return {
    owner: fields.owner,
    provider: fields.provider,
    endpoint: fields.endpoint,
    requestId: fields.requestId,
    startedAtMs: fields.startedAtMs,
    createdAt: fields.createdAt,
    source: undefined,
    keyId: null,
    requestedModel: undefined,
    reportedModel: undefined,
    streamed: false,
    wentUpstream: false,
    httpStatus: 0,
    status: "error",
    usage: NO_USAGE,
    ttfbMs: null,
  };
}

export type Pricing = {
  pricesFor(provider: ProviderId, model: string): UnitPrices | null;
  costOf(usage: Usage, prices: UnitPrices | null): number | null;
};

/**
 * Endpoints the providers do not bill: listing models, counting tokens (whose answer is the
 * tokens a request *would* use). Recorded with zero tokens and zero cost, never as unknown cost.
 */
const FREE_ENDPOINTS: ReadonlySet<string> = new Set(["models", "messages.count_tokens"]);
const FREE_USAGE: Usage = { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, cacheWriteTokens: 0 };

export function toUsageRecord(facts: CallFacts, pricing: Pricing, nowMs: number): UsageRecord {
  const model = facts.reportedModel ?? facts.requestedModel ?? "";
  const isFree = FREE_ENDPOINTS.has(facts.endpoint);
  const prices = model === "" || isFree ? null : pricing.pricesFor(facts.provider, model);
  const usage = isFree ? FREE_USAGE : facts.usage;
  return {
    id: newId("use", facts.createdAt.getTime()),
    owner: facts.owner,
    keyId: facts.keyId,
    source: facts.source ?? "platform",
    provider: facts.provider,
    endpoint: facts.endpoint,
    model,
    inputTokens: usage.inputTokens ?? null,
    outputTokens: usage.outputTokens ?? null,
    cachedInputTokens: usage.cachedInputTokens ?? null,
    cacheWriteTokens: usage.cacheWriteTokens ?? null,
    costNanoUsd: isFree ? 0 : pricing.costOf(usage, prices),
    prices,
    status: facts.status,
    httpStatus: facts.httpStatus,
    latencyMs: Math.max(0, Math.round(nowMs - facts.startedAtMs)),
    ttfbMs: facts.ttfbMs,
    streamed: facts.streamed,
    requestId: facts.requestId,
    createdAt: facts.createdAt.toISOString(),
  };
}
