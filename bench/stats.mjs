// Small statistics helpers: percentiles of one run, medians across repeats.

/**
 * Nearest-rank percentile of ascending values; null when there are none.
 * @param {ArrayLike<number>} sorted
 * @param {number} fraction 0..1
 */
export function percentile(sorted, fraction) {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(fraction * sorted.length)));
  return /** @type {number} */ (sorted[rank - 1]);
}

/**
 * p50, p90, p99 and max of some values (milliseconds), or nulls when there are none.
 * @param {number[]} values
 */
export function summarize(values) {
  const sorted = Float64Array.from(values).sort();
  return {
    count: sorted.length,
    p50: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    p99: percentile(sorted, 0.99),
    max: sorted.length === 0 ? null : /** @type {number} */ (sorted[sorted.length - 1]),
  };
}

/**
 * Median of the numbers among `values` (nulls and undefined are skipped); null when none is left.
 * @param {(number | null | undefined)[]} values
 */
export function median(values) {
  const numbers = values.filter((value) => typeof value === "number" && Number.isFinite(value)).sort((a, b) => a - b);
  if (numbers.length === 0) return null;
  const middle = Math.floor(numbers.length / 2);
  return numbers.length % 2 === 1
    ? /** @type {number} */ (numbers[middle])
    : (/** @type {number} */ (numbers[middle - 1]) + /** @type {number} */ (numbers[middle])) / 2;
}

/**
 * `a / b`, or null when either is missing or `b` is not positive.
 * @param {number | null | undefined} a
 * @param {number | null | undefined} b
 */
export function ratio(a, b) {
  if (typeof a !== "number" || typeof b !== "number" || !(b > 0)) return null;
  return a / b;
}

/**
 * `a - b`, or null when either is missing.
 * @param {number | null | undefined} a
 * @param {number | null | undefined} b
 */
export function difference(a, b) {
  if (typeof a !== "number" || typeof b !== "number") return null;
  return a - b;
}
