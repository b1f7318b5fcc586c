import type { Clock } from "../lib/clock.js";
import { AppError } from "../lib/errors.js";
import { nanoToUsd } from "../lib/money.js";
import type { UsageGroup, UsageGroupBy, UsageRepo, UsageSource } from "../store/ports.js";

export type UsageRow = {
  group: string;
  requests: number;
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
  estimatedCostUsd: number;
  unpricedRequests: number;
};

export type UsageReport = {
  from: string;
  to: string;
  groupBy: UsageGroupBy;
  source: UsageSource | null;
  totals: Omit<UsageRow, "group">;
  series: UsageRow[];
};

const MAX_RANGE_DAYS = 366;
const DAY_MS = 86_400_000;

/** One owner's usage report: validated range (default: this UTC month so far), totals and series. */
export function createUsageReport({ usage, clock }: { usage: Pick<UsageRepo, "summarize">; clock: Clock }) {
  return async function report(
    owner: string,
    query: { from?: string | undefined; to?: string | undefined; groupBy?: UsageGroupBy | undefined; source?: UsageSource | undefined },
  ): Promise<UsageReport> {
    const now = clock.now();
    const from = query.from === undefined ? new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)) : parseInstant("from", query.from);
    const to = query.to === undefined ? now : parseInstant("to", query.to);
    if (from.getTime() >= to.getTime()) throw new AppError("invalid_request", "from must be before to.");
    if (to.getTime() - from.getTime() > MAX_RANGE_DAYS * DAY_MS) {
      throw new AppError("invalid_request", `The range may span at most ${MAX_RANGE_DAYS} days.`);
    }
    const groupBy = query.groupBy ?? "day";
    const groups = await usage.summarize(owner, {
      from: from.toISOString(),
      to: to.toISOString(),
      groupBy,
      ...(query.source === undefined ? {} : { source: query.source }),
    });
    const series = groups.map(toUsageRow);
    return { from: from.toISOString(), to: to.toISOString(), groupBy, source: query.source ?? null, totals: sum(groups), series };
  };
}

export type UsageReporter = ReturnType<typeof createUsageReport>;

function parseInstant(name: string, value: string): Date {
  const parsed = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:\d{2}))?$/.test(value) ? new Date(value) : undefined;
  if (parsed === undefined || Number.isNaN(parsed.getTime())) {
    throw new AppError("invalid_request", `${name} must be a date (YYYY-MM-DD) or an ISO-8601 timestamp with a time zone.`);
  }
  return parsed;
}

/** A stored group as the API shows it: USD instead of nano-USD. */
export function toUsageRow(group: UsageGroup): UsageRow {
  return {
    group: group.group,
    requests: group.requests,
    inputTokens: group.inputTokens,
    outputTokens: group.outputTokens,
    cachedInputTokens: group.cachedInputTokens,
    estimatedCostUsd: nanoToUsd(group.costNanoUsd),
    unpricedRequests: group.unpricedRequests,
  };
}

function sum(groups: readonly UsageGroup[]): Omit<UsageRow, "group"> {
  let costNanoUsd = 0;
  const totals = { requests: 0, inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, estimatedCostUsd: 0, unpricedRequests: 0 };
  for (const group of groups) {
    totals.requests += group.requests;
    totals.inputTokens += group.inputTokens;
    totals.outputTokens += group.outputTokens;
    totals.cachedInputTokens += group.cachedInputTokens;
    totals.unpricedRequests += group.unpricedRequests;
    costNanoUsd += group.costNanoUsd;
  }
  totals.estimatedCostUsd = nanoToUsd(costNanoUsd);
  return totals;
}

/** The report as CSV: one line per group, a header line first. */
export function usageReportCsv(report: UsageReport): string {
  const header = [report.groupBy, "requests", "input_tokens", "output_tokens", "cached_input_tokens", "estimated_cost_usd", "unpriced_requests"];
  const lines = report.series.map((row) =>
    [csvField(row.group), row.requests, row.inputTokens, row.outputTokens, row.cachedInputTokens, row.estimatedCostUsd, row.unpricedRequests].join(","),
  );
  return `${[header.join(","), ...lines].join("\n")}\n`;
}

/** Quotes a field; a leading formula character is neutralised so spreadsheets do not run it. */
function csvField(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
