const DAY_MS = 86_400_000;

/** Usage records created in [from, to): ISO-8601 UTC text, compared as text like `created_at`. */
export type RecordSpan = { from: string; to: string };

/**
 * How a report's range [from, to) is read. Whole UTC days come from the `usage_daily` roll-up. A
 * day only partly inside the range is read the cheaper of two ways, judged by time span: the
 * records of the part inside the range are added, or the whole day comes from the roll-up and the
 * records of the part outside are subtracted. The default report ends now, late in a day whose
 * remainder holds no records yet: that day is the roll-up's minus an empty read, however many
 * records the day already holds.
 */
export type SummaryPlan = {
  /** UTC days (`YYYY-MM-DD`, both inclusive) read whole from `usage_daily`; null when none. */
  days: { first: string; last: string } | null;
  /** Records read and added to the roll-up's days. */
  add: RecordSpan[];
  /** Records of the roll-up's days outside the range, read and taken away. */
  subtract: RecordSpan[];
};

const toIso = (ms: number): string => new Date(ms).toISOString();
const startOfDay = (ms: number): number => Math.floor(ms / DAY_MS) * DAY_MS;

/** Milliseconds of an instant the store wrote itself (`Date.toISOString()` form), else throws. */
function toMilliseconds(name: string, value: string): number {
  const ms = Date.parse(value);
  // Ranges compare as text with `created_at`; only this exact form sorts like the time it names.
  if (Number.isNaN(ms) || toIso(ms) !== value) throw new Error(`Usage summary ${name} is not an ISO-8601 UTC instant: ${value}`);
  return ms;
}

/** Splits [from, to) into whole days from the roll-up and raw records at its edges. */
export function planSummary(from: string, to: string): SummaryPlan {
  const fromMs = toMilliseconds("from", from);
  const toMs = toMilliseconds("to", to);
  const plan: SummaryPlan = { days: null, add: [], subtract: [] };
  if (fromMs >= toMs) return plan;
  const firstDay = startOfDay(fromMs);
  const lastDay = startOfDay(toMs - 1);
  let firstWhole = firstDay;
  let lastWhole = lastDay;

  if (firstDay === lastDay) {
    const inside = toMs - fromMs;
    if (inside <= DAY_MS - inside) {
      plan.add.push({ from, to });
      return plan;
    }
    if (fromMs > firstDay) plan.subtract.push({ from: toIso(firstDay), to: from });
    if (toMs < firstDay + DAY_MS) plan.subtract.push({ from: to, to: toIso(firstDay + DAY_MS) });
  } else {
    if (fromMs > firstDay) {
      const inside = firstDay + DAY_MS - fromMs;
      if (inside <= fromMs - firstDay) {
        plan.add.push({ from, to: toIso(firstDay + DAY_MS) });
        firstWhole += DAY_MS;
      } else {
        plan.subtract.push({ from: toIso(firstDay), to: from });
      }
    }
    if (toMs < lastDay + DAY_MS) {
      const inside = toMs - lastDay;
      if (inside <= lastDay + DAY_MS - toMs) {
        plan.add.push({ from: toIso(lastDay), to });
        lastWhole -= DAY_MS;
      } else {
        plan.subtract.push({ from: to, to: toIso(lastDay + DAY_MS) });
      }
    }
  }
  if (firstWhole <= lastWhole) plan.days = { first: toIso(firstWhole).slice(0, 10), last: toIso(lastWhole).slice(0, 10) };
  return plan;
}
