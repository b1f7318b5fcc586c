import { describe, expect, it } from "vitest";
import type { BudgetMonth } from "../store/ports.js";
import { createMemoryLedger } from "./memory-ledger.js";
import { monthOf } from "./period.js";

const MARCH = monthOf(new Date("2026-03-10T00:00:00.000Z"));
const APRIL = monthOf(new Date("2026-04-10T00:00:00.000Z"));
const MAY = monthOf(new Date("2026-05-10T00:00:00.000Z"));

/** The records' settled spend per counter, and every load the ledger asked for. */
function recordsOf(settled: Record<string, number>) {
  const loads: { owner: string; month: string; counters: readonly string[] }[] = [];
  const budgets = {
    async settledSpend(owner: string, month: BudgetMonth, counters: readonly string[]) {
      loads.push({ owner, month: month.month, counters });
      // A real load waits for the database: give concurrent reservations time to pile up.
      await new Promise((resolve) => setTimeout(resolve, 5));
      return Object.fromEntries(counters.map((counter) => [counter, settled[counter] ?? 0]));
    },
  };
  return { budgets, loads };
}

describe("the memory ledger", () => {
  it("starts each counter from the records once, however many reservations wait for it, and admits exactly what fits", async () => {
    const { budgets, loads } = recordsOf({ owner: 30 });
    const ledger = createMemoryLedger(budgets);
    const caps = [{ counter: "owner", limitNanoUsd: 130 }];
    const results = await Promise.all(Array.from({ length: 30 }, () => ledger.reserve("o1", MARCH, caps, 10)));
    expect(results.filter((result) => result.ok)).toHaveLength(10);
    expect(results.filter((result) => !result.ok)).toEqual(Array.from({ length: 20 }, () => ({ ok: false, counter: "owner", spentNanoUsd: 130 })));
    expect(loads).toEqual([{ owner: "o1", month: "2026-03", counters: ["owner"] }]);
    expect(await ledger.spent("o1", MARCH, ["owner"])).toEqual({ owner: 130 });
  });

  it("takes from every cap or from none, and names the first cap that refuses", async () => {
    const { budgets } = recordsOf({ owner: 0, "key:k1": 90 });
    const ledger = createMemoryLedger(budgets);
    const caps = [
      { counter: "owner", limitNanoUsd: 1_000 },
      { counter: "key:k1", limitNanoUsd: 100 },
    ];
    expect(await ledger.reserve("o1", MARCH, caps, 10)).toEqual({ ok: true, spentNanoUsd: { owner: 10, "key:k1": 100 } });
    expect(await ledger.reserve("o1", MARCH, caps, 1)).toEqual({ ok: false, counter: "key:k1", spentNanoUsd: 100 });
    expect(await ledger.spent("o1", MARCH, ["owner", "key:k1"])).toEqual({ owner: 10, "key:k1": 100 });
  });

  it("settles into existing counters only, in the month they were reserved in", async () => {
    const { budgets } = recordsOf({});
    const ledger = createMemoryLedger(budgets);
    await ledger.reserve("o1", MARCH, [{ counter: "owner", limitNanoUsd: 1_000 }], 700);
    expect(await ledger.adjust("o1", "2026-03", ["owner", "platform"], -650)).toEqual({ owner: 50 });
    expect(await ledger.adjust("o2", "2026-03", ["owner"], 5)).toEqual({});
    expect(await ledger.adjust("o1", "2026-04", ["owner"], 5)).toEqual({});
    expect(await ledger.spent("o1", MARCH, ["owner"])).toEqual({ owner: 50 });
  });

  it("reads the records for a counter it does not hold, without starting it", async () => {
    const { budgets, loads } = recordsOf({ platform: 42 });
    const ledger = createMemoryLedger(budgets);
    expect(await ledger.spent("o1", MARCH, ["platform"])).toEqual({ platform: 42 });
    expect(await ledger.spent("o1", MARCH, ["platform"])).toEqual({ platform: 42 });
    expect(loads).toHaveLength(2);
  });

  it("starts a dropped counter again from the records", async () => {
    const settled: Record<string, number> = { "key:k1": 0 };
    const { budgets } = recordsOf(settled);
    const ledger = createMemoryLedger(budgets);
    const caps = [{ counter: "key:k1", limitNanoUsd: 100 }];
    expect(await ledger.reserve("o1", MARCH, caps, 60)).toMatchObject({ ok: true });
    await ledger.drop("o1", "2026-03", "key:k1");
    settled["key:k1"] = 25;
    expect(await ledger.reserve("o1", MARCH, caps, 60)).toEqual({ ok: true, spentNanoUsd: { "key:k1": 85 } });
  });

  it("forgets months two behind the newest it counts in", async () => {
    const { budgets } = recordsOf({});
    const ledger = createMemoryLedger(budgets);
    const caps = [{ counter: "owner", limitNanoUsd: 1_000 }];
    for (const month of [MARCH, APRIL, MAY]) await ledger.reserve("o1", month, caps, 100);
    expect(await ledger.adjust("o1", "2026-03", ["owner"], -100)).toEqual({});
    expect(await ledger.adjust("o1", "2026-04", ["owner"], -100)).toEqual({ owner: 0 });
  });

  it("fails a reservation whose records cannot be read, and starts the counter at the next one", async () => {
    let isDown = true;
    const ledger = createMemoryLedger({
      async settledSpend(_owner, _month, counters) {
        if (isDown) throw new Error("database down");
        return Object.fromEntries(counters.map((counter) => [counter, 7]));
      },
    });
    const caps = [{ counter: "owner", limitNanoUsd: 100 }];
    await expect(ledger.reserve("o1", MARCH, caps, 10)).rejects.toThrow("database down");
    isDown = false;
    expect(await ledger.reserve("o1", MARCH, caps, 10)).toEqual({ ok: true, spentNanoUsd: { owner: 17 } });
  });
});
