import type { BudgetCap } from "../store/ports.js";
import type { BudgetLedger } from "./ledger.js";

type Pending<C extends BudgetCap> = { owner: string; month: string; cap: C; deltaNanoUsd: number };

/**
 * Settlements gathered in memory and applied to the ledger every `intervalMs`, one adjustment per
 * counter whatever the number of calls. A settlement almost always gives back part of a
 * reservation, so until it is applied the counter reads high: a cap then refuses a little early,
 * never late. A process killed before a flush leaves those reservations counted in full, as if
 * never settled (see docs/decisions.md). Writing each settlement as it came cost a second
 * database commit (or Redis round trip) per call.
 */
export function createSettlementBatcher<C extends BudgetCap>(options: {
  adjust: BudgetLedger["adjust"];
  intervalMs: number;
  /**
   * A settlement took a counter past its cap (the call cost more than its worst case: input the
   * body did not hold). Told once per flush and counter.
   */
  onCapPassed: (owner: string, month: string, cap: C, spentNanoUsd: number) => void;
  /** An adjustment the ledger refused; it is kept and tried again at the next flush. */
  onError: (error: unknown) => void;
}) {
  const pending = new Map<string, Pending<C>>();
  let timer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> | undefined;

  async function flushNow(): Promise<void> {
    timer = undefined;
    const entries = [...pending.values()].filter((entry) => entry.deltaNanoUsd !== 0);
    pending.clear();
    for (const entry of entries) {
      const { owner, month, cap, deltaNanoUsd } = entry;
      let values: Record<string, number>;
      try {
        values = await options.adjust(owner, month, [cap.counter], deltaNanoUsd);
      } catch (error) {
        options.onError(error);
        add(owner, month, [cap], deltaNanoUsd);
        continue;
      }
      // Only a charge above the reservation can pass a cap; a reservation never does.
      const value = values[cap.counter];
      if (deltaNanoUsd > 0 && value !== undefined && value > cap.limitNanoUsd) options.onCapPassed(owner, month, cap, value);
    }
  }

  function flush(): Promise<void> {
    flushing ??= flushNow().finally(() => {
      flushing = undefined;
    });
    return flushing;
  }

  function add(owner: string, month: string, caps: readonly C[], deltaNanoUsd: number): void {
    if (deltaNanoUsd === 0) return;
    for (const cap of caps) {
      const key = `${owner.length}:${owner}|${month}|${cap.counter}`;
      const entry = pending.get(key);
      if (entry === undefined) pending.set(key, { owner, month, cap, deltaNanoUsd });
      else {
        entry.deltaNanoUsd += deltaNanoUsd;
        entry.cap = cap;
      }
    }
    if (timer === undefined && flushing === undefined) {
      timer = setTimeout(() => void flush(), options.intervalMs);
      timer.unref();
    }
  }

  return {
    add,
    /** Applies everything gathered so far (shutdown; tests). */
    async close(): Promise<void> {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      await flushing;
      await flush();
    },
  };
}

export type SettlementBatcher<C extends BudgetCap> = ReturnType<typeof createSettlementBatcher<C>>;
