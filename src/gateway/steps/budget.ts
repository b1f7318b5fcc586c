import type { UsageRecord } from "../../store/ports.js";
import type { CallContext } from "../call-context.js";

/** Whatever a budget implementation needs to settle or release one reservation (opaque to the pipeline). */
export type BudgetReservation = {
  readonly kind: "budget-reservation";
  /** The worst-case cost held against the caps until the call is settled or released. */
  readonly reservedNanoUsd: number;
};

/**
 * The budget step (DESIGN.md, Gateway: "Budgets are enforced by reservation"). The pipeline calls
 * `reserve` between "limit" and "forward", once the key is chosen, so a refused call never
 * reaches the provider; at the end `finishCall` settles the reservation to the call's real cost,
 * or releases it when nothing billable happened (no attempt reached the provider). Leave it out
 * (`undefined`) and the pipeline skips the step without an await.
 */
export type CallBudget = {
  /**
   * Reserves the call's worst-case cost (input estimate + `max_tokens` at the model's price),
   * atomically against the owner's and the key's budgets.
   * @throws AppError `budget_exceeded` to refuse the call before any upstream request
   */
  reserve(call: Readonly<CallContext>): Promise<BudgetReservation | undefined>;
  /** The call reached the provider: charge what it really cost (`costNanoUsd` null: unknown price). */
  settle(reservation: BudgetReservation, record: UsageRecord): void;
  /** No attempt reached the provider: give the reservation back. */
  release(reservation: BudgetReservation): void;
};
