import type { KeyStatus, ProviderId } from "../lib/domain.js";
import { nanoToUsd } from "../lib/money.js";
import type { ProviderKeyRow } from "../store/ports.js";

/** The key object of the management API. Built field by field: a row is never returned whole. */
export type KeyView = {
  id: string;
  provider: ProviderId;
  label: string;
  keyHint: string;
  status: KeyStatus;
  statusDetail: string | null;
  statusChangedAt: string;
  isActive: boolean;
  monthlyLimitUsd: number | null;
  createdAt: string;
  updatedAt: string;
  lastTestedAt: string | null;
  lastUsedAt: string | null;
  totalRequests: number;
  totalTokens: number;
  estimatedCostUsd: number;
};

export function toKeyView(row: ProviderKeyRow): KeyView {
  return {
    id: row.id,
    provider: row.provider,
    label: row.label,
    keyHint: row.keyHint,
    status: row.status,
    statusDetail: row.statusDetail,
    statusChangedAt: row.statusChangedAt,
    isActive: row.isActive,
    monthlyLimitUsd: row.monthlyLimitNanoUsd === null ? null : nanoToUsd(row.monthlyLimitNanoUsd),
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    lastTestedAt: row.lastTestedAt,
    lastUsedAt: row.lastUsedAt,
    totalRequests: row.totalRequests,
    totalTokens: row.totalTokens,
    estimatedCostUsd: nanoToUsd(row.costNanoUsd),
  };
}

/** `****...abc1`: the last four characters, the only part of a key ever shown again. */
export function keyHintOf(apiKey: string): string {
  return `****...${apiKey.slice(-4)}`;
}
