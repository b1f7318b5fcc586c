import { nanoToUsd } from "../lib/money.js";
import type { BudgetCap } from "../store/ports.js";
import { keyCounter, OWNER_COUNTER, PLATFORM_COUNTER } from "./ledger.js";
import type { BudgetPeriod } from "./period.js";

export type CapKind = "owner_budget" | "key_limit" | "platform_allowance";

/** A cap that applies to a call: what it is, where it counts and its limit. */
export type CapDescription = BudgetCap & { kind: CapKind; keyId: string | null };

/**
 * A limit that only counts (the alert threshold with no budget): the counter runs, nothing is
 * refused. Still a safe integer, so every backend adds to it exactly.
 */
export const NO_LIMIT = Number.MAX_SAFE_INTEGER;

/**
 * The caps one call reserves against, owner budget first: the owner's budget (or, with only an
 * alert threshold, the owner's counter without a limit), the key's own monthly limit (the owner's
 * key), the tier's platform allowance (the platform key). Empty: nothing to reserve.
 */
export function capsForCall(input: {
  budgetNanoUsd: number | null;
  thresholdNanoUsd: number | null;
  key: { id: string; monthlyLimitNanoUsd: number | null } | undefined;
  platformAllowanceNanoUsd: number | undefined;
}): CapDescription[] {
  const caps: CapDescription[] = [];
  if (input.budgetNanoUsd !== null) caps.push({ kind: "owner_budget", counter: OWNER_COUNTER, limitNanoUsd: input.budgetNanoUsd, keyId: null });
  else if (input.thresholdNanoUsd !== null) caps.push({ kind: "owner_budget", counter: OWNER_COUNTER, limitNanoUsd: NO_LIMIT, keyId: null });
  if (input.key !== undefined && input.key.monthlyLimitNanoUsd !== null) {
    caps.push({ kind: "key_limit", counter: keyCounter(input.key.id), limitNanoUsd: input.key.monthlyLimitNanoUsd, keyId: input.key.id });
  }
  if (input.platformAllowanceNanoUsd !== undefined) {
    caps.push({ kind: "platform_allowance", counter: PLATFORM_COUNTER, limitNanoUsd: input.platformAllowanceNanoUsd, keyId: null });
  }
  return caps;
}

/** `$12.50`, `$0.000123`: cents, or up to a millionth of a dollar below one dollar. */
function usd(nano: number): string {
  const value = nanoToUsd(nano);
  if (value >= 1 || value === 0) return `$${value.toFixed(2)}`;
  return `$${value.toFixed(6).replace(/0+$/, "").replace(/\.(\d)$/, ".$10")}`;
}

/**
 * What a refused call is told: which cap, how much of it is used, what this call could cost,
 * and when the cap resets (the first instant of next month, UTC).
 */
export function refusalMessage(cap: CapDescription, spentNanoUsd: number, reservedNanoUsd: number, period: BudgetPeriod): string {
  const resets = `It resets at ${period.resetsAt} (the start of next month, UTC)`;
  const position = `${usd(spentNanoUsd)} of ${usd(cap.limitNanoUsd)} used this month; this call could cost up to ${usd(reservedNanoUsd)}`;
  switch (cap.kind) {
    case "owner_budget":
      return `Your monthly budget would be exceeded (${position}). ${resets}; you can raise it in Settings.`;
    case "key_limit":
      return `This key's monthly limit would be exceeded (key ${cap.keyId ?? ""}: ${position}). ${resets}; you can raise it in Settings.`;
    case "platform_allowance":
      return `Your plan's platform allowance would be exceeded (${position}). ${resets}; add your own API key in Settings to keep going.`;
  }
}
