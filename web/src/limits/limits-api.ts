import type { Limits, LimitsChange, SpendCap } from "keyport/client";
import { client } from "../client.js";

export type { Limits, LimitsChange, SpendCap };

/** The fields of `PUT /api/v1/limits`, in the form's order. */
export const LIMIT_FIELDS = ["monthlyBudgetUsd", "notifyThresholdUsd", "notifyEmail", "webhookUrl"] as const;

export const getLimits = (): Promise<Limits> => client.limits.get();
export const putLimits = (change: LimitsChange): Promise<Limits> => client.limits.update(change);
export const rotateWebhookSecret = (): Promise<{ webhookSecret: string }> => client.limits.rotateWebhookSecret();
