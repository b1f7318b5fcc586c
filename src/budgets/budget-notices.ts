import type { Clock } from "../lib/clock.js";
import { newId } from "../lib/ids.js";
import { nanoToUsd } from "../lib/money.js";
import type { AuditEvent, BudgetRepo } from "../store/ports.js";
import type { CapDescription } from "./caps.js";
import type { BudgetPeriod } from "./period.js";

/** Notices this instance remembers having recorded (per month). */
const MAX_REMEMBERED = 100_000;

/**
 * The budget notification events: `budget.threshold_reached` once per owner and month,
 * `budget.exceeded` once per cap and month, however many calls cross them at once, on however
 * many instances (the `budget_notices` primary key decides; the event and its outbox rows are
 * written in the same transaction). Each instance also remembers what it already recorded, so a
 * busy owner past a cap costs no database write per call.
 */
export function createBudgetNotices(deps: { budgets: Pick<BudgetRepo, "recordNotice">; clock: Clock; onError: (error: unknown) => void }) {
  const recorded = new Set<string>();
  let recordedMonth = "";

  function record(owner: string, period: BudgetPeriod, notice: string, type: AuditEvent["type"], detail: Record<string, unknown>, keyId: string | null): void {
    if (recordedMonth !== period.month) {
      recorded.clear();
      recordedMonth = period.month;
    }
    const memo = `${owner.length}:${owner}:${notice}`;
    if (recorded.has(memo)) return;
    // Bounded; the database keeps each notice once anyway, this only spares it the writes.
    if (recorded.size >= MAX_REMEMBERED) recorded.clear();
    recorded.add(memo);
    const createdAt = deps.clock.now();
    const event: AuditEvent = {
      id: newId("evt", createdAt.getTime()),
      owner,
      type,
      keyId,
      actor: "system",
      ip: null,
      userAgent: null,
      detail: { month: period.month, resetsAt: period.resetsAt, ...detail },
      createdAt: createdAt.toISOString(),
    };
    deps.budgets.recordNotice(owner, period.month, notice, event).catch((error: unknown) => {
      // Not recorded: the next call that crosses tries again.
      recorded.delete(memo);
      deps.onError(error);
    });
  }

  return {
    /** Spend plus reservations reached the owner's alert threshold. */
    thresholdReached(owner: string, period: BudgetPeriod, thresholdNanoUsd: number, spentNanoUsd: number): void {
      record(owner, period, "threshold", "budget.threshold_reached", { thresholdUsd: nanoToUsd(thresholdNanoUsd), spentUsd: nanoToUsd(spentNanoUsd) }, null);
    },
    /** A call was refused by a cap. */
    exceeded(owner: string, period: BudgetPeriod, cap: CapDescription, spentNanoUsd: number): void {
      const detail = { cap: cap.kind, limitUsd: nanoToUsd(cap.limitNanoUsd), spentUsd: nanoToUsd(spentNanoUsd), ...(cap.keyId === null ? {} : { keyId: cap.keyId }) };
      record(owner, period, `exceeded:${cap.counter}`, "budget.exceeded", detail, cap.keyId);
    },
  };
}

export type BudgetNotices = ReturnType<typeof createBudgetNotices>;
