import type { BudgetLedger } from "./ledger.js";

type Pending = { owner: string; month: string; counter: string; deltaNanoUsd: number };

/**
 * Settlements gathered in memory and applied to the ledger every `intervalMs`, one adjustment per
 * counter whatever the number of calls. A settlement almost always gives back part of a
 * reservation, so until it is applied the counter reads high: a cap then refuses a little early,
 * never late. A process killed before a flush leaves those reservations counted in full, as if
 * never settled (see docs/decisions.md). Writing each settlement as it came cost a second
 * database commit (or Redis round trip) per call.
 */
export function createSettlementBatcher(options: {
  adjust: BudgetLedger["adjust"];
  intervalMs: number;
  /** An adjustment the ledger refused; it is kept and tried again at the next flush. */
  onError: (error: unknown) => void;
}) {
  const pending = new Map<string, Pending>();
  let timer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> | undefined;

  async function flushNow(): Promise<void> {
    timer = undefined;
    const entries = [...pending.values()].filter((entry) => entry.deltaNanoUsd !== 0);
    pending.clear();
    for (const entry of entries) {
      try {
        await options.adjust(entry.owner, entry.month, [entry.counter], entry.deltaNanoUsd);
      } catch (error) {
        options.onError(error);
        add(entry.owner, entry.month, [entry.counter], entry.deltaNanoUsd);
      }
    }
  }

  function flush(): Promise<void> {
    flushing ??= flushNow().finally(() => {
      flushing = undefined;
    });
    return flushing;
  }

  function add(owner: string, month: string, counters: readonly string[], deltaNanoUsd: number): void {
    if (deltaNanoUsd === 0) return;
    for (const counter of counters) {
      const key = `${owner.length}:${owner}|${month}|${counter}`;
      const entry = pending.get(key);
      if (entry === undefined) pending.set(key, { owner, month, counter, deltaNanoUsd });
      else entry.deltaNanoUsd += deltaNanoUsd;
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

export type SettlementBatcher = ReturnType<typeof createSettlementBatcher>;
