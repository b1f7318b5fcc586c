import { randomUUID } from "node:crypto";
import { newId } from "../lib/ids.js";
import type { NewProviderKey } from "./ports.js";

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
