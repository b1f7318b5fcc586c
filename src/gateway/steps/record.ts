import { performance } from "node:perf_hooks";
import type { ProviderId } from "../../lib/domain.js";
import { newId } from "../../lib/ids.js";
import { NO_USAGE, type Usage } from "../../lib/usage.js";
import type { UnitPrices, UsageRecord } from "../../store/ports.js";
import type { JournalStart, JournalTicket, UsageJournal } from "../../usage/usage-journal.js";
import type { CallContext } from "../call-context.js";
import type { CallBudget } from "./budget.js";

export type Pricing = {
  pricesFor(provider: ProviderId, model: string): UnitPrices | null;
  costOf(usage: Usage, prices: UnitPrices | null): number | null;
};

/**
 * Told about every call once it has ended, whatever happened to it: `record` is its usage record,
 * `undefined` when the call never reached a provider (refused by Keyport: bad token, no key, rate
 * limit). Metrics and access logs hook in here. Listeners run on the call's own path, after the
 * answer was sent: keep them cheap and never throw.
 */
export type CallEndListener = (call: Readonly<CallContext>, record: UsageRecord | undefined) => void;

export type RecordDeps = {
  /** Queues a usage record for the batched writer (never blocks the call). */
  recordUsage: (record: UsageRecord) => void;
  pricing: Pricing;
  budget: CallBudget | undefined;
  /** The usage journal (a record survives the process being killed); `undefined` writes none. */
  journal: UsageJournal | undefined;
  onCallEnd: readonly CallEndListener[];
};

/**
 * The journal's start line, written before the call goes upstream: the record's id, who pays and
 * what was reserved, so a restart can record the call even if this process dies before it ends.
 */
export function journalStart(call: Readonly<CallContext>, deps: RecordDeps): JournalTicket | undefined {
  if (deps.journal === undefined) return undefined;
  return deps.journal.start(startEntry(call, newId("use", call.createdAt.getTime())));
}

/**
 * The start line again, after the call fell back to the platform key: a restart then records it
 * against the key, source and reservation that now serve it (the platform key's caps), not the
 * refused key's.
 */
export function journalRestart(call: Readonly<CallContext>, deps: RecordDeps): JournalTicket | undefined {
  if (deps.journal === undefined || call.journal === undefined) return call.journal;
  return deps.journal.restart(call.journal, startEntry(call, call.journal.id));
}

function startEntry(call: Readonly<CallContext>, id: string): JournalStart {
  const credential = call.credential;
  return {
    id,
    createdAt: call.createdAt.toISOString(),
    requestId: call.request.id,
    owner: call.principal?.owner ?? "",
    keyId: credential?.keyId ?? null,
    source: credential?.source ?? "platform",
    tier: call.principal?.tier ?? null,
    provider: call.adapter.id,
    endpoint: call.endpoint.name,
    model: call.prepared?.model ?? "",
    streamed: call.prepared?.stream === true,
    reservedNanoUsd: call.reservation?.reservedNanoUsd ?? null,
  };
}

/**
 * The last step of every call: one usage record for a call that reached the provider at least
 * once (one per client call, whatever the retries and fallbacks; calls refused before are not
 * usage), the budget reservation settled to the real cost or released, then the end-of-call
 * listeners. Everything comes from the call context.
 */
export function finishCall(call: Readonly<CallContext>, deps: RecordDeps): void {
  const record = call.servedBy === undefined ? undefined : toUsageRecord(call, deps.pricing, performance.now());
  if (call.reservation !== undefined && deps.budget !== undefined) {
    if (record === undefined) deps.budget.release(call.reservation);
    else deps.budget.settle(call.reservation, record);
  }
  if (record !== undefined) deps.recordUsage(record);
  // After the record is queued: the journal's segment may go once the writer has committed it.
  if (call.journal !== undefined) deps.journal?.end(call.journal, record);
  // The access log line (gateway/access-log.ts) and the metrics are listeners.
  for (const listener of deps.onCallEnd) listener(call, record);
}

/**
 * Endpoints the providers do not bill (listing models, counting tokens: the answer is the tokens
 * a request *would* use) are recorded with zero tokens and zero cost, never as unknown cost.
 */
const FREE_USAGE: Usage = { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, cacheWriteTokens: 0 };

/** The usage record of a call that reached the provider: the key that served its last attempt, and how it ended. */
export function toUsageRecord(call: Readonly<CallContext>, pricing: Pricing, nowMs: number): UsageRecord {
  const { outcome, servedBy, endpoint } = call;
  const provider = call.adapter.id;
  const model = outcome?.reportedModel ?? call.prepared?.model ?? "";
  const isFree = !endpoint.isBilled;
  const prices = model === "" || isFree ? null : pricing.pricesFor(provider, model);
  const usage = isFree ? FREE_USAGE : (outcome?.usage ?? NO_USAGE);
  const firstByteAtMs = outcome?.firstByteAtMs ?? null;
  return {
    id: call.journal?.id ?? newId("use", call.createdAt.getTime()),
    owner: call.principal?.owner ?? "",
    keyId: servedBy?.keyId ?? null,
    source: servedBy?.source ?? "platform",
    tier: call.principal?.tier ?? null,
    provider,
    endpoint: endpoint.name,
    model,
    inputTokens: usage.inputTokens ?? null,
    outputTokens: usage.outputTokens ?? null,
    cachedInputTokens: usage.cachedInputTokens ?? null,
    cacheWriteTokens: usage.cacheWriteTokens ?? null,
    costNanoUsd: isFree ? 0 : pricing.costOf(usage, prices),
    prices,
    status: outcome?.status ?? "error",
    httpStatus: outcome?.httpStatus ?? 0,
    latencyMs: Math.max(0, Math.round(nowMs - call.startedAtMs)),
    ttfbMs: firstByteAtMs === null ? null : Math.max(0, Math.round(firstByteAtMs - call.startedAtMs)),
    streamed: outcome?.streamed === true || call.prepared?.stream === true,
    requestId: call.request.id,
    createdAt: call.createdAt.toISOString(),
  };
}
