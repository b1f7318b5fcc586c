import type { BudgetCap, BudgetRepo, BudgetReserveResult } from "../store/ports.js";
import type { BudgetPeriod } from "./period.js";

/** The counter of the owner's whole spend (the owner budget and the alert threshold count here). */
export const OWNER_COUNTER = "owner";
/** The counter of the owner's spend on the platform key (the tier's platform allowance). */
export const PLATFORM_COUNTER = "platform";
/** The counter of one key's spend (its monthly limit). */
export function keyCounter(keyId: string): string {
  return `key:${keyId}`;
}

/**
 * Where caps count: the database (`db-ledger.ts`) on one instance, Redis (`redis-budget-ledger.ts`)
 * across instances. A counter holds the month's settled spend plus the reservations not settled
 * yet; it starts from the month's `usage_daily` the first time a cap counts in it. `reserve`
 * is atomic across every caller of the same backend: of concurrent reservations, only those that
 * fit under every cap are taken.
 */
export type BudgetLedger = {
  reserve(owner: string, period: BudgetPeriod, caps: readonly BudgetCap[], amountNanoUsd: number): Promise<BudgetReserveResult>;
  /**
   * Adds `deltaNanoUsd` (negative to give back) to the counters, in the month they were reserved
   * in; the values of those that exist, after it.
   */
  adjust(owner: string, month: string, counters: readonly string[], deltaNanoUsd: number): Promise<Record<string, number>>;
  /** Every counter's value now: the counter itself where it exists, else the month's settled spend. */
  spent(owner: string, period: BudgetPeriod, counters: readonly string[]): Promise<Record<string, number>>;
  /** Forgets a counter whose cap was removed, so a cap set again later starts from the records. */
  drop(owner: string, month: string, counter: string): Promise<void>;
};

/** The database ledger: counters in `budget_counters`, reservations written before the call goes upstream. */
export function createDbLedger(budgets: BudgetRepo): BudgetLedger {
  return {
    reserve: (owner, period, caps, amountNanoUsd) => budgets.reserve(owner, period, caps, amountNanoUsd),
    adjust: (owner, month, counters, deltaNanoUsd) => budgets.adjust(owner, month, counters, deltaNanoUsd),
    async spent(owner, period, counters) {
      const stored = await budgets.counters(owner, period.month);
      const missing = counters.filter((counter) => !Object.hasOwn(stored, counter));
      const settled = missing.length === 0 ? {} : await budgets.settledSpend(owner, period, missing);
      return Object.fromEntries(counters.map((counter) => [counter, stored[counter] ?? settled[counter] ?? 0]));
    },
    drop: (owner, month, counter) => budgets.dropCounter(owner, month, counter),
  };
}
