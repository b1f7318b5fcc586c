import { AppError } from "../lib/errors.js";
import type { BudgetCap, BudgetRepo, BudgetReserveResult } from "../store/ports.js";
import type { BudgetLedger } from "./ledger.js";
import type { BudgetPeriod } from "./period.js";

/** A reservation that keeps finding one of its counters dropped gives up after this many seeds. */
const MAX_SEED_PASSES = 3;

/** owner → counter → spent (nano-USD), for one month. */
type MonthCounters = Map<string, Map<string, number>>;

/**
 * The ledger of a single instance (SQLite, see "SQLite mode" in docs/decisions.md): counters in
 * memory, each started from the month's `usage_daily` the first time a cap counts in it, so a
 * reservation is a check and an addition with no I/O. Atomic because the process is the only one
 * reserving, and a reservation's check and addition run in one synchronous step.
 *
 * Durability comes from the usage journal, not from writing counters: every call that goes
 * upstream has its start line (with its reservation) on disk first, and at the next start the
 * journal's calls become usage records (a call that never ended at its reservation) before any
 * counter is read. A counter started from the records after a crash therefore holds everything
 * the killed process had reserved and not settled.
 */
export function createMemoryLedger(budgets: Pick<BudgetRepo, "settledSpend">): BudgetLedger {
  const months = new Map<string, MonthCounters>();
  /** Counters being started from the records: month → owner → counter → the load. */
  const seeding = new Map<string, Map<string, Map<string, Promise<void>>>>();

  /** The month's counters; a month two behind the newest is forgotten (settlements straddle one boundary at most). */
  function monthCounters(month: string): MonthCounters {
    let counters = months.get(month);
    if (counters === undefined) {
      counters = new Map();
      months.set(month, counters);
      const kept = [...months.keys()].sort().slice(-2);
      for (const old of months.keys()) if (!kept.includes(old)) months.delete(old);
    }
    return counters;
  }

  function ownerCounters(month: string, owner: string): Map<string, number> {
    const counters = monthCounters(month);
    let values = counters.get(owner);
    if (values === undefined) {
      values = new Map();
      counters.set(owner, values);
    }
    return values;
  }

  function flightsOf(month: string, owner: string): Map<string, Promise<void>> {
    let owners = seeding.get(month);
    if (owners === undefined) seeding.set(month, (owners = new Map()));
    let flights = owners.get(owner);
    if (flights === undefined) owners.set(owner, (flights = new Map()));
    return flights;
  }

  /** Starts the missing counters from the records; concurrent reservations share one load per counter. */
  async function seed(owner: string, period: BudgetPeriod, missing: readonly string[]): Promise<void> {
    const flights = flightsOf(period.month, owner);
    const waits: Promise<void>[] = [];
    const fresh = missing.filter((counter) => {
      const flight = flights.get(counter);
      if (flight !== undefined) waits.push(flight);
      return flight === undefined;
    });
    if (fresh.length > 0) {
      const load = budgets.settledSpend(owner, period, fresh).then((settled) => {
        const values = ownerCounters(period.month, owner);
        for (const counter of fresh) if (!values.has(counter)) values.set(counter, settled[counter] ?? 0);
      });
      const forget = () => {
        for (const counter of fresh) flights.delete(counter);
        if (flights.size === 0) seeding.get(period.month)?.delete(owner);
      };
      const flight = load.finally(forget);
      for (const counter of fresh) flights.set(counter, flight);
      waits.push(flight);
    }
    await Promise.all(waits);
  }

  /**
   * Checks every cap and adds to all of them, in one synchronous step; `undefined` when a counter
   * is not there (not started yet, or dropped meanwhile).
   */
  function take(values: Map<string, number>, caps: readonly BudgetCap[], amountNanoUsd: number): BudgetReserveResult | undefined {
    for (const cap of caps) {
      const spent = values.get(cap.counter);
      if (spent === undefined) return undefined;
      // The first cap in the caller's order that refuses is the one the caller is told about.
      if (spent + amountNanoUsd > cap.limitNanoUsd) return { ok: false, counter: cap.counter, spentNanoUsd: spent };
    }
    const spentNanoUsd: Record<string, number> = {};
    for (const cap of caps) {
      const spent = (values.get(cap.counter) ?? 0) + amountNanoUsd;
      values.set(cap.counter, spent);
      spentNanoUsd[cap.counter] = spent;
    }
    return { ok: true, spentNanoUsd };
  }

  return {
    async reserve(owner, period, caps, amountNanoUsd) {
      const values = ownerCounters(period.month, owner);
      for (let pass = 0; pass < MAX_SEED_PASSES; pass += 1) {
        const result = take(values, caps, amountNanoUsd);
        if (result !== undefined) return result;
        await seed(owner, period, caps.map((cap) => cap.counter).filter((counter) => !values.has(counter)));
      }
      const result = take(values, caps, amountNanoUsd);
      if (result === undefined) throw new AppError("internal", "Internal error", { internal: { reason: "a budget counter kept disappearing while it was started" } });
      return result;
    },

    async adjust(owner, month, counters, deltaNanoUsd) {
      const values = months.get(month)?.get(owner);
      const after: Record<string, number> = {};
      if (values === undefined) return after;
      for (const counter of counters) {
        const spent = values.get(counter);
        if (spent === undefined) continue;
        values.set(counter, spent + deltaNanoUsd);
        after[counter] = spent + deltaNanoUsd;
      }
      return after;
    },

    async spent(owner, period, counters) {
      const values = months.get(period.month)?.get(owner);
      const missing = counters.filter((counter) => values?.get(counter) === undefined);
      const settled = missing.length === 0 ? {} : await budgets.settledSpend(owner, period, missing);
      return Object.fromEntries(counters.map((counter) => [counter, values?.get(counter) ?? settled[counter] ?? 0]));
    },

    async drop(owner, month, counter) {
      months.get(month)?.get(owner)?.delete(counter);
    },
  };
}
