import type { Tier } from "../config/tiers.js";
import type { Clock } from "../lib/clock.js";
import { AppError } from "../lib/errors.js";
import { isLimitUsd, MAX_LIMIT_USD, nanoToUsd, usdToNano } from "../lib/money.js";
import type { KeyRepo, OwnerLimitsRepo, OwnerLimitsRow } from "../store/ports.js";
import { keyCounter, OWNER_COUNTER, PLATFORM_COUNTER, type BudgetLedger } from "./ledger.js";
import type { BudgetPeriod } from "./period.js";

export type CapView =
  | { kind: "owner_budget"; limitUsd: number; spentUsd: number; remainingUsd: number }
  | { kind: "key_limit"; keyId: string; label: string; provider: string; limitUsd: number; spentUsd: number; remainingUsd: number }
  | { kind: "platform_allowance"; tier: string; limitUsd: number; spentUsd: number; remainingUsd: number };

/** `GET /api/v1/limits` without the webhook secret (the route adds it). */
export type LimitsView = {
  monthlyBudgetUsd: number | null;
  notifyThresholdUsd: number | null;
  notifyEmail: string | null;
  webhookUrl: string | null;
  period: { start: string; resetsAt: string };
  spentUsd: number;
  caps: CapView[];
};

export type LimitsUpdate = {
  monthlyBudgetUsd?: number | null;
  notifyThresholdUsd?: number | null;
  notifyEmail?: string | null;
  webhookUrl?: string | null;
};

export type LimitsServiceDeps = {
  repo: OwnerLimitsRepo;
  keys: Pick<KeyRepo, "list">;
  ledger: BudgetLedger;
  tiers: Readonly<Record<string, Tier>>;
  period: () => BudgetPeriod;
  clock: Clock;
  validateWebhookUrl(url: string): Promise<{ ok: true; url: string } | { ok: false; message: string }>;
  /** Runs the save so that every instance drops its cached copy of the owner's limits. */
  change<T>(owner: string, write: () => Promise<T>): Promise<T>;
};

/** RFC 5321's path limit; the shape check is deliberately plain (the mail server has the last word). */
const MAX_EMAIL_LENGTH = 254;
const EMAIL = /^[^\s@<>()",;:]+@[^\s@<>()",;:]+\.[^\s@<>()",;:]+$/;

const round = (usd: number) => Math.round(usd * 1e9) / 1e9;

function amountOf(field: "monthlyBudgetUsd" | "notifyThresholdUsd", value: unknown): number | null {
  if (value === null) return null;
  if (!isLimitUsd(value)) {
    throw new AppError("invalid_request", `${field} must be a number of USD from 0 to ${MAX_LIMIT_USD} with at most 6 decimals, or null to clear it.`);
  }
  return usdToNano(value);
}

/**
 * The owner's limits: the budget, the alert threshold and where alerts go (`owner_limits`), and
 * every cap that applies with this month's spend against it. A threshold above the budget is
 * allowed (it is never reached: calls stop at the budget).
 */
export function createLimitsService(deps: LimitsServiceDeps) {
  async function view(owner: string, tierName: string): Promise<LimitsView> {
    const row = await deps.repo.find(owner);
    const period = deps.period();
    const keys = (await deps.keys.list(owner)).filter((key) => key.monthlyLimitNanoUsd !== null);
    const tier = Object.hasOwn(deps.tiers, tierName) ? deps.tiers[tierName] : undefined;
    const allowance = tier?.platformMonthlyBudgetNanoUsd;
    const counters = [OWNER_COUNTER, ...keys.map((key) => keyCounter(key.id)), ...(allowance === undefined ? [] : [PLATFORM_COUNTER])];
    const spent = await deps.ledger.spent(owner, period, counters);
    const cap = (limit: number, counter: string) => {
      const used = spent[counter] ?? 0;
      return { limitUsd: nanoToUsd(limit), spentUsd: round(nanoToUsd(used)), remainingUsd: round(nanoToUsd(Math.max(0, limit - used))) };
    };
    const caps: CapView[] = [];
    const budget = row?.monthlyBudgetNanoUsd ?? null;
    if (budget !== null) caps.push({ kind: "owner_budget", ...cap(budget, OWNER_COUNTER) });
    for (const key of keys) {
      caps.push({ kind: "key_limit", keyId: key.id, label: key.label, provider: key.provider, ...cap(key.monthlyLimitNanoUsd ?? 0, keyCounter(key.id)) });
    }
    if (allowance !== undefined) caps.push({ kind: "platform_allowance", tier: tierName, ...cap(allowance, PLATFORM_COUNTER) });
    return {
      monthlyBudgetUsd: budget === null ? null : nanoToUsd(budget),
      notifyThresholdUsd: row?.notifyThresholdNanoUsd == null ? null : nanoToUsd(row.notifyThresholdNanoUsd),
      notifyEmail: row?.notifyEmail ?? null,
      webhookUrl: row?.webhookUrl ?? null,
      period: { start: period.start, resetsAt: period.resetsAt },
      spentUsd: round(nanoToUsd(spent[OWNER_COUNTER] ?? 0)),
      caps,
    };
  }

  /**
   * Changes the fields present in `update` (`null` clears one); every field is checked before
   * anything is written, so a bad field changes nothing.
   * @throws AppError `invalid_request` naming the field; `invalid_webhook_url`
   */
  async function update(owner: string, tierName: string, body: LimitsUpdate): Promise<LimitsView> {
    const next: Partial<OwnerLimitsRow> = {};
    if (body.monthlyBudgetUsd !== undefined) next.monthlyBudgetNanoUsd = amountOf("monthlyBudgetUsd", body.monthlyBudgetUsd);
    if (body.notifyThresholdUsd !== undefined) next.notifyThresholdNanoUsd = amountOf("notifyThresholdUsd", body.notifyThresholdUsd);
    if (body.notifyEmail !== undefined) {
      const email = body.notifyEmail === null ? null : body.notifyEmail.trim();
      if (email !== null && (email.length > MAX_EMAIL_LENGTH || !EMAIL.test(email))) {
        throw new AppError("invalid_request", "notifyEmail must be an email address (name@example.com), or null to clear it.");
      }
      next.notifyEmail = email;
    }
    if (body.webhookUrl !== undefined) {
      if (body.webhookUrl === null) next.webhookUrl = null;
      else {
        const check = await deps.validateWebhookUrl(body.webhookUrl);
        if (!check.ok) throw new AppError("invalid_webhook_url", check.message);
        next.webhookUrl = check.url;
      }
    }
    await deps.change(owner, async () => {
      const current = await deps.repo.find(owner);
      const row: OwnerLimitsRow = {
        owner,
        monthlyBudgetNanoUsd: current?.monthlyBudgetNanoUsd ?? null,
        notifyThresholdNanoUsd: current?.notifyThresholdNanoUsd ?? null,
        notifyEmail: current?.notifyEmail ?? null,
        webhookUrl: current?.webhookUrl ?? null,
        ...next,
        updatedAt: deps.clock.now().toISOString(),
      };
      await deps.repo.save(row);
      // Nothing counts in the owner's counter any more: forget it, so a budget set again later
      // starts from the month's records instead of a count that stopped.
      const wasCounting = current !== undefined && (current.monthlyBudgetNanoUsd !== null || current.notifyThresholdNanoUsd !== null);
      if (wasCounting && row.monthlyBudgetNanoUsd === null && row.notifyThresholdNanoUsd === null) {
        await deps.ledger.drop(owner, deps.period().month, OWNER_COUNTER);
      }
    });
    return view(owner, tierName);
  }

  /** Where the owner's notifications go (the outbox's delivery settings). */
  async function notificationSettings(owner: string): Promise<{ webhookUrl: string | null; notifyEmail: string | null }> {
    const row = await deps.repo.find(owner);
    return { webhookUrl: row?.webhookUrl ?? null, notifyEmail: row?.notifyEmail ?? null };
  }

  return { view, update, notificationSettings };
}

export type LimitsService = ReturnType<typeof createLimitsService>;
