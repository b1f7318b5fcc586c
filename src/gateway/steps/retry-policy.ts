/** Bounded retries of upstream calls, only before the first byte has reached the client. */
export type RetryPolicy = {
  /** Retries after the first attempt. */
  maxRetries: number;
  /** First backoff; doubles each retry, with full jitter. */
  baseDelayMs: number;
  /** Largest single backoff. */
  maxDelayMs: number;
  /** A `retry-after` longer than this is not waited for: the answer goes to the client instead. */
  retryAfterCapMs: number;
};

/**
 * Milliseconds to wait before retry number `retry` (0-based), or `undefined` when the upstream
 * asked for a longer pause than we are willing to hold the client for.
 */
export function retryDelayMs(
  policy: RetryPolicy,
  retry: number,
  retryAfterHeader: string | undefined,
  random: () => number = Math.random,
): number | undefined {
  const retryAfterMs = parseRetryAfterMs(retryAfterHeader);
  if (retryAfterMs !== undefined) return retryAfterMs > policy.retryAfterCapMs ? undefined : retryAfterMs;
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
  return Math.round(random() * ceiling);
}

/** `retry-after` as seconds or an HTTP date; `retry-after-ms` is not standard and not read. */
export function parseRetryAfterMs(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return seconds < 0 ? undefined : Math.round(seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
