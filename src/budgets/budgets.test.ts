import { describe, expect, it } from "vitest";
import { isLimitUsd } from "../lib/money.js";
import { capsForCall, NO_LIMIT, refusalMessage } from "./caps.js";
import { createLimitsCache } from "./limits-cache.js";
import { DEFAULT_OUTPUT_CEILING, outputCeilingOf } from "./output-ceilings.js";
import { createPeriodClock, monthOf } from "./period.js";
import { createSettlementBatcher } from "./settlements.js";
import { UNPRICED_FALLBACK, worstCaseNanoUsd } from "./worst-case.js";

const MINI = { inputNanoUsdPerMTok: 150_000_000, outputNanoUsdPerMTok: 600_000_000, cachedInputNanoUsdPerMTok: 75_000_000, cacheWriteNanoUsdPerMTok: 0 };

describe("the budget month", () => {
  it("is the UTC calendar month, resetting at the first instant of the next", () => {
    expect(monthOf(new Date("2026-12-31T23:59:59.999Z"))).toEqual({
      month: "2026-12",
      start: "2026-12-01T00:00:00.000Z",
      resetsAt: "2027-01-01T00:00:00.000Z",
      firstDay: "2026-12-01",
      nextFirstDay: "2027-01-01",
    });
    expect(monthOf(new Date("2027-01-01T00:00:00.000Z")).month).toBe("2027-01");
    expect(monthOf(new Date("2028-02-29T12:00:00.000Z")).resetsAt).toBe("2028-03-01T00:00:00.000Z");
  });

  it("moves on when the clock crosses the month (and back, for a clock set back)", () => {
    let now = new Date("2026-11-30T23:59:59.000Z");
    const period = createPeriodClock(() => now);
    expect(period().month).toBe("2026-11");
    now = new Date("2026-12-01T00:00:00.000Z");
    expect(period().month).toBe("2026-12");
    now = new Date("2026-11-15T00:00:00.000Z");
    expect(period().month).toBe("2026-11");
  });
});

describe("a call's worst case", () => {
  it("counts every body byte as an input token and the output limit at the output price, rounded up", () => {
    expect(worstCaseNanoUsd({ bodyBytes: 1_000, maxOutputTokens: 100, model: "gpt-4o-mini", prices: MINI })).toBe(150_000 + 60_000);
    expect(worstCaseNanoUsd({ bodyBytes: 1, maxOutputTokens: 0, model: "gpt-4o-mini", prices: MINI })).toBe(150);
    expect(worstCaseNanoUsd({ bodyBytes: 1, maxOutputTokens: 0, model: "x", prices: { ...MINI, inputNanoUsdPerMTok: 1 } })).toBe(1);
  });

  it("takes the model's documented output ceiling when the call sets no limit, and a conservative default for unknown models", () => {
    expect(outputCeilingOf("gpt-4o-mini-2024-07-18")).toBe(16_384);
    expect(outputCeilingOf("o1-mini")).toBe(65_536);
    expect(outputCeilingOf("claude-sonnet-4-5")).toBe(64_000);
    expect(outputCeilingOf("text-embedding-3-small")).toBe(0);
    expect(outputCeilingOf("some-new-model")).toBe(DEFAULT_OUTPUT_CEILING);
    expect(outputCeilingOf(undefined)).toBe(DEFAULT_OUTPUT_CEILING);
    expect(worstCaseNanoUsd({ bodyBytes: 0, maxOutputTokens: undefined, model: "gpt-4o", prices: MINI })).toBe(16_384 * 600);
  });

  it("prices a model without a price at the most expensive known prices (unknown is not free)", () => {
    expect(worstCaseNanoUsd({ bodyBytes: 10, maxOutputTokens: 10, model: "mystery", prices: null })).toBe(
      (10 * UNPRICED_FALLBACK.inputNanoUsdPerMTok + 10 * UNPRICED_FALLBACK.outputNanoUsdPerMTok) / 1_000_000,
    );
  });
});

describe("caps of a call", () => {
  it("lists the owner budget first, then the key's limit, then the platform allowance", () => {
    expect(capsForCall({ budgetNanoUsd: 5, thresholdNanoUsd: null, key: { id: "key_1", monthlyLimitNanoUsd: 3 }, platformAllowanceNanoUsd: undefined }).map((cap) => cap.counter)).toEqual([
      "owner",
      "key:key_1",
    ]);
    expect(capsForCall({ budgetNanoUsd: null, thresholdNanoUsd: null, key: undefined, platformAllowanceNanoUsd: 7 })).toEqual([
      { kind: "platform_allowance", counter: "platform", limitNanoUsd: 7, keyId: null },
    ]);
    expect(capsForCall({ budgetNanoUsd: null, thresholdNanoUsd: null, key: { id: "key_1", monthlyLimitNanoUsd: null }, platformAllowanceNanoUsd: undefined })).toEqual([]);
  });

  it("counts without a limit when only the alert threshold is set", () => {
    expect(capsForCall({ budgetNanoUsd: null, thresholdNanoUsd: 9, key: undefined, platformAllowanceNanoUsd: undefined })).toEqual([
      { kind: "owner_budget", counter: "owner", limitNanoUsd: NO_LIMIT, keyId: null },
    ]);
  });

  it("says which cap refused, how much is used, and when it resets", () => {
    const period = monthOf(new Date("2026-12-05T10:00:00.000Z"));
    const message = refusalMessage({ kind: "owner_budget", counter: "owner", limitNanoUsd: 50_000_000_000, keyId: null }, 49_990_000_000, 20_000_000, period);
    expect(message).toBe(
      "Your monthly budget would be exceeded ($49.99 of $50.00 used this month; this call could cost up to $0.02). It resets at 2027-01-01T00:00:00.000Z (the start of next month, UTC); you can raise it in Settings.",
    );
    expect(refusalMessage({ kind: "key_limit", counter: "key:key_9", limitNanoUsd: 1_000, keyId: "key_9" }, 0, 82_500, period)).toMatch(
      /^This key's monthly limit would be exceeded \(key key_9: \$0\.00 of \$0\.000001 used this month; this call could cost up to \$0\.00008\d\)/,
    );
  });
});

describe("USD limits", () => {
  it.each([[0], [50], [0.000001], [1_000_000], [999_999.999999], [45.123456], [0.1 + 0.2]])("accepts %s", (usd) => expect(isLimitUsd(usd)).toBe(true));
  it.each([[-1], [1.0000001], [1_000_000.000001], [1e9], [Number.NaN], [Number.POSITIVE_INFINITY], ["5"], [null]])("refuses %s", (usd) => expect(isLimitUsd(usd)).toBe(false));
});

describe("the limits cache", () => {
  it("serves a hit without a promise and forgets an owner when the key-change channel names it", async () => {
    let loads = 0;
    let invalidate: (owner: string) => void = () => {};
    const cache = createLimitsCache({
      load: async (owner) => {
        loads += 1;
        return { owner, monthlyBudgetNanoUsd: loads, notifyThresholdNanoUsd: null, notifyEmail: null, webhookUrl: null, updatedAt: "" };
      },
      ttlMs: 60_000,
      clock: { now: () => new Date() },
      onInvalidate: (handler) => {
        invalidate = handler;
      },
      onInvalidateAll: () => {},
    });
    expect(await cache.get("user:a")).toEqual({ budgetNanoUsd: 1, thresholdNanoUsd: null });
    expect(cache.get("user:a")).toEqual({ budgetNanoUsd: 1, thresholdNanoUsd: null });
    invalidate("user:a");
    expect(await cache.get("user:a")).toEqual({ budgetNanoUsd: 2, thresholdNanoUsd: null });
  });

  it("does not keep what a load read before an invalidation that arrived while it ran", async () => {
    let release: () => void = () => {};
    let invalidate: (owner: string) => void = () => {};
    let loads = 0;
    const cache = createLimitsCache({
      load: async (owner) => {
        loads += 1;
        if (loads === 1) await new Promise<void>((resolve) => (release = resolve));
        return { owner, monthlyBudgetNanoUsd: loads, notifyThresholdNanoUsd: null, notifyEmail: null, webhookUrl: null, updatedAt: "" };
      },
      ttlMs: 60_000,
      clock: { now: () => new Date() },
      onInvalidate: (handler) => {
        invalidate = handler;
      },
      onInvalidateAll: () => {},
    });
    const first = cache.get("user:b");
    invalidate("user:b");
    release();
    expect(await first).toEqual({ budgetNanoUsd: 1, thresholdNanoUsd: null });
    expect(await cache.get("user:b")).toEqual({ budgetNanoUsd: 2, thresholdNanoUsd: null });
  });
});

describe("settlements", () => {
  it("are gathered per counter and applied together; a failed adjustment is tried again", async () => {
    const applied: [string, string, readonly string[], number][] = [];
    let failNext = false;
    const batcher = createSettlementBatcher({
      adjust: async (owner, month, counters, delta) => {
        if (failNext) {
          failNext = false;
          throw new Error("down");
        }
        applied.push([owner, month, counters, delta]);
        return {};
      },
      intervalMs: 60_000,
      onCapPassed: () => {},
      onError: () => {},
    });
    const cap = (counter: string) => ({ counter, limitNanoUsd: 100 });
    batcher.add("user:a", "2026-12", [cap("owner"), cap("key:k")], -10);
    batcher.add("user:a", "2026-12", [cap("owner")], -5);
    batcher.add("user:b", "2026-12", [cap("platform")], 0);
    failNext = true;
    await batcher.close();
    expect(applied).toEqual([["user:a", "2026-12", ["key:k"], -10]]);
    await batcher.close();
    expect(applied).toEqual([
      ["user:a", "2026-12", ["key:k"], -10],
      ["user:a", "2026-12", ["owner"], -15],
    ]);
  });
});

describe("a settlement that passes a cap", () => {
  it("is told once per flush, only for a charge above the reservation that takes the counter past its limit", async () => {
    const values: Record<string, number> = { owner: 120, platform: 50 };
    const passed: [string, number][] = [];
    const batcher = createSettlementBatcher({
      adjust: async (_owner, _month, counters, delta) => {
        for (const counter of counters) values[counter] = (values[counter] ?? 0) + delta;
        return Object.fromEntries(counters.map((counter) => [counter, values[counter] ?? 0]));
      },
      intervalMs: 60_000,
      onCapPassed: (_owner, _month, cap, spent) => passed.push([cap.counter, spent]),
      onError: () => {},
    });
    batcher.add("user:a", "2026-12", [{ counter: "owner", limitNanoUsd: 100 }, { counter: "platform", limitNanoUsd: 100 }], 5);
    await batcher.close();
    expect(passed).toEqual([["owner", 125]]);
    batcher.add("user:a", "2026-12", [{ counter: "owner", limitNanoUsd: 100 }], -1);
    await batcher.close();
    expect(passed).toHaveLength(1);
  });
});
