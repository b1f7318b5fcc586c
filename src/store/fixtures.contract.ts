import { randomUUID } from "node:crypto";
import { newId } from "../lib/ids.js";
import type { NewProviderKey, UsageRecord } from "./ports.js";

/** Rows for the store contract suites; unique per call so tests never see each other's data. */

export function newOwner(): string {
  return `user:${randomUUID()}`;
}

export function newKey(owner: string, createdAt: string, overrides: Partial<NewProviderKey> = {}): NewProviderKey {
  const id = newId("key");
  return {
    id,
    owner,
    provider: "openai",
    label: "Main",
    keyHint: "****...abc1",
    fingerprint: `fp-${id}`,
    ciphertext: `ct-${id}`,
    status: "valid",
    statusDetail: null,
    monthlyLimitNanoUsd: null,
    createdAt,
    lastTestedAt: null,
    ...overrides,
  };
}

const BASE_TIME = Date.parse("2025-03-01T00:00:00.000Z");

/** A fixed timestamp `minutes` after the usage tests' epoch. */
export function usageTime(minutes: number): string {
  return new Date(BASE_TIME + minutes * 60_000).toISOString();
}

/** A priced BYOK record with every optional field set. */
export function newUsageRecord(owner: string, keyId: string | null, overrides: Partial<UsageRecord> = {}): UsageRecord {
  return {
    id: newId("use"),
    owner,
    keyId,
    source: keyId === null ? "platform" : "byok",
    tier: "pro",
    provider: "openai",
    endpoint: "chat/completions",
    model: "gpt-4o-mini-2024-07-18",
    inputTokens: 1_200,
    outputTokens: 300,
    cachedInputTokens: 1_024,
    cacheWriteTokens: null,
    costNanoUsd: 285_000,
    prices: {
      inputNanoUsdPerMTok: 150_000_000,
      outputNanoUsdPerMTok: 600_000_000,
      cachedInputNanoUsdPerMTok: 75_000_000,
      cacheWriteNanoUsdPerMTok: 150_000_000,
    },
    status: "ok",
    httpStatus: 200,
    latencyMs: 812,
    ttfbMs: 95,
    streamed: true,
    requestId: newId("req"),
    createdAt: usageTime(1),
    ...overrides,
  };
}
