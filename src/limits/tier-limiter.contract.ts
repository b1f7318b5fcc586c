import { randomUUID } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Tier } from "../config/tiers.js";
import type { TierLimiter, TierLimitResult } from "./tier-limiter.js";

const tier = (requestsPerMinute: number, requestsPerDay: number): Tier => ({ requestsPerMinute, requestsPerDay, byokAllowed: false });

/** A fresh owner per attempt, so tests never share counters (nor do parallel runs). */
const newOwner = () => `user:contract-${randomUUID()}`;

/**
 * True when a window reset during the run: within one window the seconds to its reset only go
 * down, so a later result of the same window with more seconds left means a new window began.
 */
function crossedWindow(results: readonly TierLimitResult[]): boolean {
  return results.some((later, index) =>
    results.slice(0, index).some((earlier) => earlier.window === later.window && later.resetSeconds > earlier.resetSeconds),
  );
}

/**
 * Runs a scenario on a fresh owner and, should a real window boundary (minute or UTC midnight)
 * fall inside it, once more on another owner. Backends that read the real clock (Redis `TIME`)
 * cannot be frozen; a scenario takes milliseconds, so two crossings in a row do not happen.
 */
export async function inOneWindow(scenario: (owner: string) => Promise<TierLimitResult[]>): Promise<TierLimitResult[]> {
  let results: TierLimitResult[] = [];
  for (let attempt = 0; attempt < 3; attempt += 1) {
    results = await scenario(newOwner());
    if (!crossedWindow(results)) return results;
  }
  return results;
}

async function checkTimes(limiter: TierLimiter, owner: string, limits: Tier, times: number): Promise<TierLimitResult[]> {
  const results: TierLimitResult[] = [];
  for (let index = 0; index < times; index += 1) results.push(await limiter.check(owner, limits));
  return results;
}

/**
 * The behaviour every `TierLimiter` must show. `create` returns a limiter whose counters are not
 * shared with other tests' owners; it is closed after each test.
 */
export function runTierLimiterContract(name: string, create: () => Promise<TierLimiter>): void {
  describe(`${name} tier limiter contract`, () => {
    let limiter: TierLimiter;
    beforeEach(async () => {
      limiter = await create();
    });
    afterEach(async () => {
      await limiter.close();
    });

    it("allows exactly requestsPerMinute, counting remaining down, then refuses with window minute", async () => {
      const results = await inOneWindow((owner) => checkTimes(limiter, owner, tier(10, 100), 12));
      expect(results.map((result) => result.allowed)).toEqual([...Array<boolean>(10).fill(true), false, false]);
      expect(results.map((result) => result.remaining)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0]);
      for (const result of results) {
        expect(result).toMatchObject({ window: "minute", limit: 10 });
        expect(result.resetSeconds).toBeGreaterThan(0);
        expect(result.resetSeconds).toBeLessThanOrEqual(60);
        expect(Number.isInteger(result.resetSeconds)).toBe(true);
      }
    });

    it("refuses with window day when the day limit is the smaller one", async () => {
      const results = await inOneWindow((owner) => checkTimes(limiter, owner, tier(10, 3), 5));
      expect(results.map((result) => [result.allowed, result.window, result.limit, result.remaining])).toEqual([
        [true, "day", 3, 2],
        [true, "day", 3, 1],
        [true, "day", 3, 0],
        [false, "day", 3, 0],
        [false, "day", 3, 0],
      ]);
      for (const result of results) {
        expect(result.resetSeconds).toBeGreaterThan(0);
        expect(result.resetSeconds).toBeLessThanOrEqual(86_400);
      }
    });

    it("refuses everything when a limit is 0", async () => {
      const owner = newOwner();
      expect(await limiter.check(owner, tier(0, 100))).toMatchObject({ allowed: false, window: "minute", limit: 0, remaining: 0 });
      expect(await limiter.check(owner, tier(10, 0))).toMatchObject({ allowed: false, window: "day", limit: 0, remaining: 0 });
      // Neither refusal counted: the owner still has the whole minute.
      expect(await limiter.check(owner, tier(10, 100))).toMatchObject({ allowed: true, window: "minute", remaining: 9 });
    });

    it("does not count refused calls against either window", async () => {
      const results = await inOneWindow(async (owner) => [
        ...(await checkTimes(limiter, owner, tier(3, 5), 8)),
        // A bigger minute limit: if the 5 refusals had counted, the minute would be spent (8 > 5).
        ...(await checkTimes(limiter, owner, tier(5, 5), 3)),
      ]);
      expect(results.map((result) => result.allowed)).toEqual([true, true, true, false, false, false, false, false, true, true, false]);
      expect(results[8]).toMatchObject({ allowed: true, remaining: 1 });
      // The day counted only the 5 allowed calls, so it now refuses.
      expect(results[10]).toMatchObject({ allowed: false, window: "day", limit: 5, remaining: 0 });
    });

    it("keeps owners independent", async () => {
      const results = await inOneWindow(async (owner) => {
        const spent = await checkTimes(limiter, owner, tier(2, 100), 3);
        const other = await limiter.check(newOwner(), tier(2, 100));
        return [...spent, other];
      });
      expect(results.map((result) => result.allowed)).toEqual([true, true, false, true]);
      expect(results[3]).toMatchObject({ remaining: 1 });
    });

    it("shares counters across tiers of one owner: an upgrade mid-window only raises the bar", async () => {
      const results = await inOneWindow(async (owner) => [
        ...(await checkTimes(limiter, owner, tier(10, 100), 11)),
        await limiter.check(owner, tier(100, 2000)),
        // A downgrade right after: the calls made under the bigger tier still count.
        await limiter.check(owner, tier(10, 100)),
      ]);
      expect(results[10]).toMatchObject({ allowed: false, window: "minute" });
      expect(results[11]).toMatchObject({ allowed: true, window: "minute", limit: 100, remaining: 89 });
      expect(results[12]).toMatchObject({ allowed: false, window: "minute", limit: 10, remaining: 0 });
    });

    it("allows exactly the limit among parallel checks", async () => {
      const results = await inOneWindow((owner) => Promise.all(Array.from({ length: 30 }, () => limiter.check(owner, tier(10, 100)))));
      expect(results.filter((result) => result.allowed)).toHaveLength(10);
      const remaining = results.filter((result) => result.allowed).map((result) => result.remaining);
      expect(remaining.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      for (const refused of results.filter((result) => !result.allowed)) expect(refused).toMatchObject({ window: "minute", remaining: 0 });
    });

    it("rejects tier limits that are not non-negative integers instead of letting calls through", async () => {
      await expect(limiter.check(newOwner(), tier(-1, 100))).rejects.toMatchObject({ code: "internal" });
      await expect(limiter.check(newOwner(), tier(10, 1.5))).rejects.toMatchObject({ code: "internal" });
      await expect(limiter.check(newOwner(), tier(Number.NaN, 100))).rejects.toMatchObject({ code: "internal" });
    });
  });
}
