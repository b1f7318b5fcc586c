import { describe, expect, it } from "vitest";
import type { Tier } from "../config/tiers.js";
import type { Clock } from "../lib/clock.js";
import { createMemoryTierLimiter, toTierLimitResult } from "./memory-tier-limiter.js";
import { runTierLimiterContract } from "./tier-limiter.contract.js";

const tier = (requestsPerMinute: number, requestsPerDay: number): Tier => ({ requestsPerMinute, requestsPerDay, byokAllowed: false });

/** A clock the test moves by hand. */
function manualClock(iso: string): Clock & { set(iso: string): void; advance(milliseconds: number): void } {
  let nowMs = Date.parse(iso);
  return {
    now: () => new Date(nowMs),
    set: (next) => {
      nowMs = Date.parse(next);
    },
    advance: (milliseconds) => {
      nowMs += milliseconds;
    },
  };
}

// Frozen mid-minute: no window boundary can fall inside a scenario.
runTierLimiterContract("memory", async () => createMemoryTierLimiter({ clock: manualClock("2025-03-10T12:00:30.000Z") }));

describe("memory tier limiter", () => {
  it("aligns the minute window to the wall clock and keeps counting the day across minutes", async () => {
    const clock = manualClock("2025-03-10T12:00:59.500Z");
    const limiter = createMemoryTierLimiter({ clock });
    expect(await limiter.check("user:a", tier(1, 3))).toMatchObject({ allowed: true, window: "minute", resetSeconds: 1 });
    expect(await limiter.check("user:a", tier(1, 3))).toMatchObject({ allowed: false, window: "minute", resetSeconds: 1 });
    clock.advance(500); // 12:01:00.000, a new minute: half a second later, not sixty.
    expect(await limiter.check("user:a", tier(1, 3))).toMatchObject({ allowed: true, window: "minute", remaining: 0, resetSeconds: 60 });
    clock.set("2025-03-10T12:02:10.000Z");
    // Both windows are now full; the tie goes to the minute.
    expect(await limiter.check("user:a", tier(1, 3))).toMatchObject({ allowed: true, window: "minute", remaining: 0 });
    clock.set("2025-03-10T12:03:10.000Z");
    expect(await limiter.check("user:a", tier(1, 3))).toMatchObject({ allowed: false, window: "day", resetSeconds: 43_010 });
  });

  it("starts a new day at midnight UTC", async () => {
    const clock = manualClock("2025-03-10T23:59:59.000Z");
    const limiter = createMemoryTierLimiter({ clock });
    expect(await limiter.check("user:a", tier(10, 1))).toMatchObject({ allowed: true, window: "day", resetSeconds: 1 });
    clock.advance(30_000);
    expect(await limiter.check("user:a", tier(10, 1))).toMatchObject({ allowed: true, window: "day", remaining: 0, resetSeconds: 86_371 });
    expect(await limiter.check("user:a", tier(10, 1))).toMatchObject({ allowed: false, window: "day" });
  });

  it("drops the least recently checked owner past maxOwners, handing it fresh counters", async () => {
    const limiter = createMemoryTierLimiter({ clock: manualClock("2025-03-10T12:00:30.000Z"), maxOwners: 2 });
    const limits = tier(1, 100);
    await limiter.check("user:a", limits);
    await limiter.check("user:b", limits);
    expect(await limiter.check("user:a", limits)).toMatchObject({ allowed: false }); // a is now the most recent
    await limiter.check("user:c", limits); // evicts b
    expect(await limiter.check("user:a", limits)).toMatchObject({ allowed: false });
    expect(await limiter.check("user:b", limits)).toMatchObject({ allowed: true }); // fresh; evicts c
    expect(await limiter.check("user:a", limits)).toMatchObject({ allowed: false });
  });

  it("forgets everything on close", async () => {
    const limiter = createMemoryTierLimiter({ clock: manualClock("2025-03-10T12:00:30.000Z") });
    await limiter.check("user:a", tier(1, 100));
    await limiter.close();
    expect(await limiter.check("user:a", tier(1, 100))).toMatchObject({ allowed: true });
  });

  it("refuses a maxOwners that is not a positive integer", () => {
    expect(() => createMemoryTierLimiter({ maxOwners: 0 })).toThrow(/maxOwners/);
    expect(() => createMemoryTierLimiter({ maxOwners: 1.5 })).toThrow(/maxOwners/);
  });
});

describe("toTierLimitResult", () => {
  const counts = { minuteResetSeconds: 20, dayResetSeconds: 5_000 };
  it("names the day when both windows refuse, since the minute reset would not help", () => {
    expect(toTierLimitResult(tier(5, 5), false, { ...counts, minuteCount: 5, dayCount: 5 })).toEqual({
      allowed: false,
      window: "day",
      limit: 5,
      remaining: 0,
      resetSeconds: 5_000,
    });
  });

  it("names the window with less room for an allowed call, the minute on a tie", () => {
    expect(toTierLimitResult(tier(10, 100), true, { ...counts, minuteCount: 3, dayCount: 95 })).toMatchObject({ window: "day", remaining: 5 });
    expect(toTierLimitResult(tier(10, 100), true, { ...counts, minuteCount: 5, dayCount: 95 })).toMatchObject({ window: "minute", remaining: 5 });
  });

  it("never reports negative room after a downgrade", () => {
    expect(toTierLimitResult(tier(10, 100), false, { ...counts, minuteCount: 50, dayCount: 50 })).toMatchObject({ window: "minute", remaining: 0 });
  });
});
