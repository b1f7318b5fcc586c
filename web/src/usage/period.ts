export type PeriodId = "month" | "7d" | "30d" | "90d";

export const PERIODS: readonly { id: PeriodId; label: string }[] = [
  { id: "month", label: "This month" },
  { id: "7d", label: "Last 7 days" },
  { id: "30d", label: "Last 30 days" },
  { id: "90d", label: "Last 90 days" },
];

const DAY_MS = 86_400_000;

/** The report range of a period, in UTC days (the API's days); `to` is "now". */
export function periodRange(id: PeriodId, now: Date = new Date()): { from: string; days: string[] } {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const first = id === "month" ? Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1) : today - (Number.parseInt(id, 10) - 1) * DAY_MS;
  const days: string[] = [];
  for (let day = first; day <= today; day += DAY_MS) days.push(new Date(day).toISOString().slice(0, 10));
  return { from: days[0] ?? new Date(today).toISOString().slice(0, 10), days };
}
