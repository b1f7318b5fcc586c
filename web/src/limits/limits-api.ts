import { KeyportError } from "keyport/client";
import { useEffect, useState } from "preact/hooks";
import { client } from "../client.js";

/**
 * The owner's spend limits (`GET`/`PUT /api/v1/limits`). The route arrives with Keyport's budgets
 * and notifications; until then this Keyport answers 404 and the page shows no Limits panel.
 */
export type Limits = {
  monthlyBudgetUsd: number | null;
  notifyThresholdUsd: number | null;
  notifyEmail: string | null;
  webhookUrl: string | null;
  /** `whsec_…`: verifies the webhook's signatures. */
  webhookSecret?: string | null;
  /** The calendar month (UTC) the caps count in. */
  period: { start: string; resetsAt: string };
  /** This month's spend, settled and still reserved, on every key. */
  spentUsd: number;
  /** Every cap that applies, the owner's budget first. */
  caps: SpendCap[];
};

export type SpendCap = {
  kind: "owner_budget" | "key_limit" | "platform_allowance";
  limitUsd: number;
  spentUsd: number;
  remainingUsd: number;
  keyId?: string;
  label?: string;
  provider?: "openai" | "anthropic";
  tier?: string;
};

export type LimitsChange = Pick<Limits, "monthlyBudgetUsd" | "notifyThresholdUsd" | "notifyEmail" | "webhookUrl">;

export const LIMIT_FIELDS = ["monthlyBudgetUsd", "notifyThresholdUsd", "notifyEmail", "webhookUrl"] as const;

export function getLimits(): Promise<Limits> {
  return client.request<Limits>("get", "/api/v1/limits");
}

export function putLimits(change: LimitsChange): Promise<Limits> {
  return client.request<Limits>("put", "/api/v1/limits", { body: change });
}

/** A new webhook signing secret; the old one keeps signing next to it for 24 hours. */
export function rotateWebhookSecret(): Promise<{ webhookSecret: string }> {
  return client.request<{ webhookSecret: string }>("post", "/api/v1/limits/webhook-secret");
}

/** `undefined` while asking; false when this Keyport has no limits route (404). */
export function useLimitsAvailable(): boolean | undefined {
  const [available, setAvailable] = useState<boolean | undefined>(undefined);
  useEffect(() => {
    getLimits().then(
      () => setAvailable(true),
      (error: unknown) => setAvailable(!(error instanceof KeyportError && error.status === 404)),
    );
  }, []);
  return available;
}
