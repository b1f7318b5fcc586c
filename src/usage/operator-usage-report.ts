import type { Clock } from "../lib/clock.js";
import { AppError } from "../lib/errors.js";
import type { ProviderId } from "../lib/domain.js";
import type { OperatorRepo, OperatorUsageGroupBy, UsageSource } from "../store/ports.js";
import { toUsageRow, type UsageRow } from "./usage-report.js";

export type OperatorUsageReport = {
  /** First UTC day in the report. */
  from: string;
  /** The UTC day after the last one in the report (exclusive). */
  to: string;
  groupBy: OperatorUsageGroupBy;
  source: UsageSource | null;
  provider: ProviderId | null;
  /** Over every group of the range and filters, not just this page. */
  totals: Omit<UsageRow, "group">;
  groups: UsageRow[];
  /** Fetches the groups after this page; null on the last page. */
  nextCursor: string | null;
};

export type OperatorUsageQuery = {
  from?: string | undefined;
  to?: string | undefined;
  groupBy?: OperatorUsageGroupBy | undefined;
  source?: UsageSource | undefined;
  provider?: ProviderId | undefined;
  cursor?: string | undefined;
  limit?: number | undefined;
};

const MAX_RANGE_DAYS = 366;
const DAY_MS = 86_400_000;
const DEFAULT_LIMIT = 100;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * Usage across owners for the operator: whole UTC days (default: this month so far, today
 * included), grouped by owner, provider, model, key source, day or the caller's tier, groups in ascending order and
 * paged by an opaque cursor (owners can be many), with totals over the whole range.
 */
export function createOperatorUsageReport({ operator, clock }: { operator: Pick<OperatorRepo, "usage" | "usageTotals">; clock: Clock }) {
  return async function report(query: OperatorUsageQuery): Promise<OperatorUsageReport> {
    const now = clock.now();
    const from = query.from === undefined ? new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)) : parseDay("from", query.from);
    const to = query.to === undefined ? new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1)) : parseDay("to", query.to);
    if (from.getTime() >= to.getTime()) throw new AppError("invalid_request", "from must be before to (to is exclusive).");
    if (to.getTime() - from.getTime() > MAX_RANGE_DAYS * DAY_MS) throw new AppError("invalid_request", `The range may span at most ${MAX_RANGE_DAYS} days.`);
    const groupBy = query.groupBy ?? "owner";
    const limit = query.limit ?? DEFAULT_LIMIT;
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor, groupBy);
    const filters = {
      fromDay: dayOf(from),
      toDay: dayOf(to),
      ...(query.source === undefined ? {} : { source: query.source }),
      ...(query.provider === undefined ? {} : { provider: query.provider }),
    };
    const [page, totals] = await Promise.all([
      operator.usage({ ...filters, groupBy, ...(after === undefined ? {} : { after }), limit: limit + 1 }),
      operator.usageTotals(filters),
    ]);
    const groups = page.slice(0, limit);
    const last = groups.at(-1);
    return {
      from: filters.fromDay,
      to: filters.toDay,
      groupBy,
      source: query.source ?? null,
      provider: query.provider ?? null,
      totals: toUsageRow({ group: "", ...totals }),
      groups: groups.map(toUsageRow),
      nextCursor: page.length > limit && last !== undefined ? encodeCursor(last.group, groupBy) : null,
    };
  };
}

export type OperatorUsageReporter = ReturnType<typeof createOperatorUsageReport>;

function parseDay(name: string, value: string): Date {
  const parsed = DAY.test(value) ? new Date(`${value}T00:00:00.000Z`) : undefined;
  // `2026-02-30` parses to March 2nd: a day that does not exist is refused, not moved.
  if (parsed === undefined || Number.isNaN(parsed.getTime()) || dayOf(parsed) !== value) {
    throw new AppError("invalid_request", `${name} must be a UTC day (YYYY-MM-DD): this report works in whole days.`);
  }
  return parsed;
}

function dayOf(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/** The cursor says which grouping it belongs to: a page of owners cannot continue a list of models. */
function encodeCursor(group: string, groupBy: OperatorUsageGroupBy): string {
  return Buffer.from(JSON.stringify([groupBy, group]), "utf8").toString("base64url");
}

function decodeCursor(cursor: string, groupBy: OperatorUsageGroupBy): string {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    decoded = undefined;
  }
  if (!Array.isArray(decoded) || decoded.length !== 2 || decoded[0] !== groupBy || typeof decoded[1] !== "string") {
    throw new AppError("invalid_cursor", "cursor must be the nextCursor of a previous page with the same groupBy.");
  }
  return decoded[1];
}

