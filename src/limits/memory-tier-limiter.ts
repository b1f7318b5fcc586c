import type { Tier } from "../config/tiers.js";
import { AppError } from "../lib/errors.js";
import { systemClock, type Clock } from "../lib/clock.js";
import type { TierLimiter, TierLimitResult } from "./tier-limiter.js";

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/** Default for `maxOwners`: about 100 bytes each, so roughly 10 MB at the cap. */
const DEFAULT_MAX_OWNERS = 100_000;

/** Both counters of one owner after a check, and how long until each window resets. */
export type WindowCounts = {
  /** Calls counted in the current minute, including this one when it was allowed. */
  minuteCount: number;
  /** Calls counted in the current UTC day, including this one when it was allowed. */
  dayCount: number;
  minuteResetSeconds: number;
  dayResetSeconds: number;
};

/**
 * The result every backend reports for one check. A refusal names the window that refused; when
 * both do, the day, since waiting for the minute to reset would not help. An allowed call names
 * the window with less room left (the minute on a tie), which is what the headers should show.
 */
export function toTierLimitResult(tier: Tier, allowed: boolean, counts: WindowCounts): TierLimitResult {
  const minute = { window: "minute" as const, limit: tier.requestsPerMinute, count: counts.minuteCount, resetSeconds: counts.minuteResetSeconds };
  const day = { window: "day" as const, limit: tier.requestsPerDay, count: counts.dayCount, resetSeconds: counts.dayResetSeconds };
  const room = (side: typeof minute | typeof day) => Math.max(0, side.limit - side.count);
  const deciding = allowed ? (room(day) < room(minute) ? day : minute) : day.count >= day.limit ? day : minute;
  return { allowed, window: deciding.window, limit: deciding.limit, remaining: room(deciding), resetSeconds: deciding.resetSeconds };
}

/** Limits come from validated config; anything else here is a bug, not a reason to let calls through. */
export function assertTierLimits(tier: Tier): void {
  const isCount = (value: number) => Number.isSafeInteger(value) && value >= 0;
  if (!isCount(tier.requestsPerMinute) || !isCount(tier.requestsPerDay)) {
    throw new AppError("internal", "Internal error", {
      internal: { reason: "tier limits must be non-negative integers", requestsPerMinute: tier.requestsPerMinute, requestsPerDay: tier.requestsPerDay },
    });
  }
}

type OwnerCounters = { minuteIndex: number; minuteCount: number; dayIndex: number; dayCount: number };

/**
 * Tier limits for a single instance (SQLite mode): counters live in this process, so several
 * instances need the Redis limiter instead. Windows are fixed and aligned to the wall-clock
 * minute and the UTC day (Unix time has no leap seconds, so `floor(ms / day)` is the UTC day).
 *
 * Memory is bounded: an owner whose UTC day has passed holds nothing worth keeping and is pruned
 * when the day turns; past `maxOwners` (default 100 000) the least recently checked owner is
 * dropped, which hands that owner fresh counters (fail open, as platform rate limits do).
 */
export function createMemoryTierLimiter(options: { clock?: Clock; maxOwners?: number } = {}): TierLimiter {
  const clock = options.clock ?? systemClock;
  const maxOwners = options.maxOwners ?? DEFAULT_MAX_OWNERS;
  if (!Number.isSafeInteger(maxOwners) || maxOwners < 1) throw new Error("maxOwners must be a positive integer");
  // Map order is recency order: a checked owner is moved to the end.
  const owners = new Map<string, OwnerCounters>();
  let prunedDayIndex = Number.NEGATIVE_INFINITY;

  function pruneFinishedDays(dayIndex: number): void {
    for (const [owner, counters] of owners) {
      if (counters.dayIndex < dayIndex) owners.delete(owner);
    }
    prunedDayIndex = dayIndex;
  }

  function countersFor(owner: string, minuteIndex: number, dayIndex: number): OwnerCounters {
    const existing = owners.get(owner);
    owners.delete(owner);
    const counters = existing ?? { minuteIndex, minuteCount: 0, dayIndex, dayCount: 0 };
    if (counters.minuteIndex !== minuteIndex) {
      counters.minuteIndex = minuteIndex;
      counters.minuteCount = 0;
    }
    if (counters.dayIndex !== dayIndex) {
      counters.dayIndex = dayIndex;
      counters.dayCount = 0;
    }
    if (existing === undefined && owners.size >= maxOwners) {
      const oldest = owners.keys().next();
      if (oldest.done !== true) owners.delete(oldest.value);
    }
    owners.set(owner, counters);
    return counters;
  }

  return {
    async check(owner: string, tier: Tier): Promise<TierLimitResult> {
      assertTierLimits(tier);
      const nowMs = clock.now().getTime();
      const minuteIndex = Math.floor(nowMs / MINUTE_MS);
      const dayIndex = Math.floor(nowMs / DAY_MS);
      if (dayIndex > prunedDayIndex) pruneFinishedDays(dayIndex);
      const counters = countersFor(owner, minuteIndex, dayIndex);
      // Check before counting: a refused call never counts against either window.
      const allowed = counters.minuteCount < tier.requestsPerMinute && counters.dayCount < tier.requestsPerDay;
      if (allowed) {
        counters.minuteCount += 1;
        counters.dayCount += 1;
      }
      return toTierLimitResult(tier, allowed, {
        minuteCount: counters.minuteCount,
        dayCount: counters.dayCount,
        minuteResetSeconds: Math.ceil(((minuteIndex + 1) * MINUTE_MS - nowMs) / 1000),
        dayResetSeconds: Math.ceil(((dayIndex + 1) * DAY_MS - nowMs) / 1000),
      });
    },
    async close(): Promise<void> {
      owners.clear();
    },
  };
}
