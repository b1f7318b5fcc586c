import { type CapDescription, capsForCall, refusalMessage } from "../../budgets/caps.js";
import type { BudgetNotices } from "../../budgets/budget-notices.js";
import type { BudgetLedger } from "../../budgets/ledger.js";
import type { CachedLimits } from "../../budgets/limits-cache.js";
import type { BudgetPeriod } from "../../budgets/period.js";
import type { SettlementBatcher } from "../../budgets/settlements.js";
import { toOutputLimit, UNPRICED_FALLBACK, worstCaseNanoUsd } from "../../budgets/worst-case.js";
import type { Tier } from "../../config/tiers.js";
import { AppError } from "../../lib/errors.js";
import { fieldName, readTopLevelFields } from "../../providers/json-fields.js";
import type { UsageRecord } from "../../store/ports.js";
import type { CallContext } from "../call-context.js";
import type { Pricing } from "./record.js";

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
   * atomically against the owner's and the key's budgets; `undefined` when no cap applies (no
   * I/O then: the owner's limits are cached in memory).
   * @throws AppError `budget_exceeded` to refuse the call before any upstream request
   */
  reserve(call: Readonly<CallContext>): Promise<BudgetReservation | undefined>;
  /** The call reached the provider: charge what it really cost (`costNanoUsd` null: unknown price). */
  settle(reservation: BudgetReservation, record: UsageRecord): void;
  /** No attempt reached the provider: give the reservation back. */
  release(reservation: BudgetReservation): void;
};

/** The ledger's own reservation: where it was taken, so settling adjusts the same counters. */
type LedgerReservation = BudgetReservation & { owner: string; month: string; caps: readonly CapDescription[] };

export type CallBudgetDeps = {
  ledger: Pick<BudgetLedger, "reserve">;
  /** Where settlements go: gathered and applied to the ledger a little later (`budgets/settlements.ts`). */
  settlements: Pick<SettlementBatcher<CapDescription>, "add">;
  limits: { get(owner: string): CachedLimits | Promise<CachedLimits> };
  tiers: Readonly<Record<string, Tier>>;
  pricing: Pricing;
  period: () => BudgetPeriod;
  notices: BudgetNotices;
};

const OUTPUT_FIELDS = [fieldName("max_tokens"), fieldName("max_completion_tokens"), fieldName("max_output_tokens"), fieldName("n")];

/** The client's output limit and choice count (OpenAI's `n` multiplies the output). */
function outputLimitOf(body: Buffer | undefined): number | undefined {
  if (body === undefined) return undefined;
  const fields = readTopLevelFields(body, OUTPUT_FIELDS);
  if (fields === undefined) return undefined;
  const limit = toOutputLimit(fields.max_tokens) ?? toOutputLimit(fields.max_completion_tokens) ?? toOutputLimit(fields.max_output_tokens);
  const choices = toOutputLimit(fields.n) ?? 1;
  return limit === undefined ? undefined : limit * choices;
}

/**
 * Spend limits by reservation, over a ledger (database or Redis). Every cap that applies to the
 * call (the owner's budget, the key's monthly limit, the tier's platform allowance) takes the
 * call's worst case in one atomic step; the call is refused with `budget_exceeded` before it goes
 * upstream when any would pass its limit. Endpoints the provider does not bill reserve nothing.
 */
export function createCallBudget(deps: CallBudgetDeps): CallBudget {
  const { ledger, notices } = deps;

  async function take(call: Readonly<CallContext>, limits: CachedLimits): Promise<BudgetReservation | undefined> {
    const principal = call.principal;
    const credential = call.credential;
    if (principal === undefined || credential === undefined) return undefined;
    const tier = Object.hasOwn(deps.tiers, principal.tier) ? deps.tiers[principal.tier] : undefined;
    const caps = capsForCall({
      budgetNanoUsd: limits.budgetNanoUsd,
      thresholdNanoUsd: limits.thresholdNanoUsd,
      key: credential.source === "byok" ? { id: credential.keyId, monthlyLimitNanoUsd: credential.row.monthlyLimitNanoUsd } : undefined,
      platformAllowanceNanoUsd: credential.source === "platform" ? tier?.platformMonthlyBudgetNanoUsd : undefined,
    });
    if (caps.length === 0) return undefined;
    const model = call.prepared?.model;
    const prices = model === undefined ? null : deps.pricing.pricesFor(call.adapter.id, model);
    const body = call.prepared?.body;
    const amount = worstCaseNanoUsd({ bodyBytes: body?.length ?? 0, maxOutputTokens: outputLimitOf(body), model, prices });
    const period = deps.period();
    const result = await ledger.reserve(principal.owner, period, caps, amount);
    if (!result.ok) {
      const cap = caps.find((candidate) => candidate.counter === result.counter) ?? caps[0];
      if (cap === undefined) throw new AppError("internal", "Internal error");
      notices.exceeded(principal.owner, period, cap, result.spentNanoUsd);
      throw new AppError("budget_exceeded", refusalMessage(cap, result.spentNanoUsd, amount, period), {
        internal: { cap: cap.kind, counter: cap.counter },
      });
    }
    const owner = result.spentNanoUsd.owner;
    if (limits.thresholdNanoUsd !== null && owner !== undefined && owner >= limits.thresholdNanoUsd) {
      notices.thresholdReached(principal.owner, period, limits.thresholdNanoUsd, owner);
    }
    const reservation: LedgerReservation = {
      kind: "budget-reservation",
      reservedNanoUsd: amount,
      owner: principal.owner,
      month: period.month,
      caps,
    };
    return reservation;
  }

  function adjust(reservation: BudgetReservation, delta: number): void {
    const { owner, month, caps } = reservation as LedgerReservation;
    deps.settlements.add(owner, month, caps, delta);
  }

  return {
    async reserve(call) {
      if (!call.endpoint.isBilled || call.principal === undefined) return undefined;
      return take(call, await deps.limits.get(call.principal.owner));
    },
    settle(reservation, record) {
      // A cost the price table does not know is charged at the fallback prices, never as free.
      const cost =
        record.costNanoUsd ??
        deps.pricing.costOf(
          {
            inputTokens: record.inputTokens ?? undefined,
            outputTokens: record.outputTokens ?? undefined,
            cachedInputTokens: record.cachedInputTokens ?? undefined,
            cacheWriteTokens: record.cacheWriteTokens ?? undefined,
          },
          UNPRICED_FALLBACK,
        ) ??
        // Tokens unknown: an error answer is not billed; anything else (a cut stream) may have
        // been, so it keeps its reservation.
        (record.status === "error" ? 0 : reservation.reservedNanoUsd);
      adjust(reservation, cost - reservation.reservedNanoUsd);
    },
    release(reservation) {
      adjust(reservation, -reservation.reservedNanoUsd);
    },
  };
}
