/** A calendar month in UTC: the period every cap counts over. */
export type BudgetPeriod = {
  /** `YYYY-MM`: the counters' key. */
  month: string;
  /** First instant of the month (ISO-8601, UTC). */
  start: string;
  /** First instant of the next month: when every cap starts again at zero. */
  resetsAt: string;
  /** `YYYY-MM-DD` of the first day, and of the first day of the next month (usage_daily bounds). */
  firstDay: string;
  nextFirstDay: string;
};

/** The UTC calendar month that holds `at`. */
export function monthOf(at: Date): BudgetPeriod {
  const year = at.getUTCFullYear();
  const month = at.getUTCMonth();
  const start = new Date(Date.UTC(year, month, 1));
  const next = new Date(Date.UTC(year, month + 1, 1));
  const startIso = start.toISOString();
  const nextIso = next.toISOString();
  return { month: startIso.slice(0, 7), start: startIso, resetsAt: nextIso, firstDay: startIso.slice(0, 10), nextFirstDay: nextIso.slice(0, 10) };
}

/** The month a counter key (`YYYY-MM`) names, at a cheap per-call cost: recomputed only when the month changes. */
export function createPeriodClock(now: () => Date): () => BudgetPeriod {
  let current: BudgetPeriod | undefined;
  let endsAtMs = 0;
  return () => {
    const at = now();
    const ms = at.getTime();
    if (current === undefined || ms >= endsAtMs || ms < Date.parse(current.start)) {
      current = monthOf(at);
      endsAtMs = Date.parse(current.resetsAt);
    }
    return current;
  };
}
