import { describe, expect, it } from "vitest";
import { newId } from "../lib/ids.js";
import { newOwner, newUsageRecord, usageTime } from "./fixtures.contract.js";
import type { AuditEvent, Store } from "./ports.js";

/** The usage fixtures' month (their records are created from 2025-03-01). */
const MARCH = { month: "2025-03", firstDay: "2025-03-01", nextFirstDay: "2025-04-01" };

function budgetEvent(owner: string): AuditEvent {
  return {
    id: newId("evt"),
    owner,
    type: "budget.exceeded",
    keyId: null,
    actor: "system",
    ip: null,
    userAgent: null,
    detail: { cap: "owner_budget" },
    createdAt: usageTime(5),
  };
}

/**
 * Budget counters, notices and owner limits, as every `Store` must keep them. Registered inside
 * the store contract, which hands over a fresh store per test through `currentStore`.
 */
export function describeBudgetContract(currentStore: () => Store): void {
  describe("budgets", () => {
    it("starts each counter from the month's settled spend in usage_daily, per owner, platform and key", async () => {
      const store = currentStore();
      const owner = newOwner();
      await store.usage.insertBatch([
        newUsageRecord(owner, "key_a", { costNanoUsd: 1_000 }),
        newUsageRecord(owner, "key_b", { costNanoUsd: 20_000 }),
        newUsageRecord(owner, null, { costNanoUsd: 300_000 }),
        // Another month and another owner count nowhere here.
        newUsageRecord(owner, "key_a", { costNanoUsd: 5, createdAt: "2025-04-01T00:00:00.000Z" }),
        newUsageRecord(newOwner(), "key_a", { costNanoUsd: 7 }),
        // A model without a price counts at the fallback prices on its tokens: 150,000 and
        // 600,000 nano-USD per input and output token.
        newUsageRecord(owner, "key_c", { model: "unpriced-model", costNanoUsd: null, prices: null, inputTokens: 10, outputTokens: 2, cachedInputTokens: 4 }),
      ]);
      expect(await store.budgets.settledSpend(owner, MARCH, ["owner", "platform", "key:key_a", "key:key_c"])).toEqual({
        owner: 321_000 + 2_700_000,
        platform: 300_000,
        "key:key_a": 1_000,
        "key:key_c": 2_700_000,
      });
      const reserved = await store.budgets.reserve(owner, MARCH, [{ counter: "owner", limitNanoUsd: 4_000_000 }, { counter: "key:key_a", limitNanoUsd: 2_000 }], 500);
      expect(reserved).toEqual({ ok: true, spentNanoUsd: { owner: 3_021_500, "key:key_a": 1_500 } });
      expect(await store.budgets.counters(owner, MARCH.month)).toEqual({ owner: 3_021_500, "key:key_a": 1_500 });
    });

    it("refuses a reservation that would pass any cap, changes no counter, and names the first such cap in the caller's order", async () => {
      const store = currentStore();
      const owner = newOwner();
      const caps = [
        { counter: "owner", limitNanoUsd: 1_000 },
        { counter: "key:key_x", limitNanoUsd: 1_000 },
        { counter: "platform", limitNanoUsd: 10_000 },
      ];
      expect(await store.budgets.reserve(owner, MARCH, caps, 600)).toMatchObject({ ok: true });
      expect(await store.budgets.reserve(owner, MARCH, caps, 600)).toEqual({ ok: false, counter: "owner", spentNanoUsd: 600 });
      expect(await store.budgets.counters(owner, MARCH.month)).toEqual({ owner: 600, "key:key_x": 600, platform: 600 });
      // Exactly up to the limit is allowed.
      expect(await store.budgets.reserve(owner, MARCH, caps, 400)).toMatchObject({ ok: true, spentNanoUsd: { owner: 1_000 } });
    });

    it("lets exactly as many concurrent reservations through as fit", async () => {
      const store = currentStore();
      const owner = newOwner();
      const results = await Promise.all(
        Array.from({ length: 30 }, () => store.budgets.reserve(owner, MARCH, [{ counter: "owner", limitNanoUsd: 100 }, { counter: "platform", limitNanoUsd: 1_000 }], 10)),
      );
      expect(results.filter((result) => result.ok)).toHaveLength(10);
      expect(await store.budgets.counters(owner, MARCH.month)).toEqual({ owner: 100, platform: 100 });
    });

    it("adjusts counters that exist, and forgets a dropped one", async () => {
      const store = currentStore();
      const owner = newOwner();
      await store.budgets.reserve(owner, MARCH, [{ counter: "owner", limitNanoUsd: 1_000 }], 700);
      expect(await store.budgets.adjust(owner, MARCH.month, ["owner", "platform"], -650)).toEqual({ owner: 50 });
      expect(await store.budgets.counters(owner, MARCH.month)).toEqual({ owner: 50 });
      await store.budgets.dropCounter(owner, MARCH.month, "owner");
      expect(await store.budgets.counters(owner, MARCH.month)).toEqual({});
    });

    it("records a notice once however many ask at once, with its event and outbox rows", async () => {
      const store = currentStore();
      const owner = newOwner();
      const recorded = await Promise.all(Array.from({ length: 8 }, () => store.budgets.recordNotice(owner, MARCH.month, "exceeded:owner", budgetEvent(owner))));
      expect(recorded.filter(Boolean)).toHaveLength(1);
      const events = await store.notifications.listEvents(owner, { limit: 10 });
      expect(events.map(({ event }) => event.type)).toEqual(["budget.exceeded"]);
      expect(events[0]?.deliveries.length).toBeGreaterThan(0);
      // Another month, or another notice, is recorded again.
      expect(await store.budgets.recordNotice(owner, "2025-04", "exceeded:owner", budgetEvent(owner))).toBe(true);
      expect(await store.budgets.recordNotice(owner, MARCH.month, "threshold", budgetEvent(owner))).toBe(true);
    });

    it("saves and replaces an owner's limits", async () => {
      const store = currentStore();
      const owner = newOwner();
      expect(await store.ownerLimits.find(owner)).toBeUndefined();
      const row = { owner, monthlyBudgetNanoUsd: 50_000_000_000, notifyThresholdNanoUsd: null, notifyEmail: "a@example.com", webhookUrl: null, updatedAt: usageTime(0) };
      await store.ownerLimits.save(row);
      expect(await store.ownerLimits.find(owner)).toEqual(row);
      const next = { ...row, monthlyBudgetNanoUsd: null, webhookUrl: "https://hooks.example.com/k", updatedAt: usageTime(1) };
      await store.ownerLimits.save(next);
      expect(await store.ownerLimits.find(owner)).toEqual(next);
    });
  });
}
