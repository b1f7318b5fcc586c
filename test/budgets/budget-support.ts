import { expect } from "vitest";
import { worstCaseNanoUsd } from "../../src/budgets/worst-case.js";
import type { TestKeyport, TestResponse } from "../support/harness.js";

/** gpt-4o-mini's list prices in the shipped table, nano-USD per million tokens. */
export const MINI_PRICES = { inputNanoUsdPerMTok: 150_000_000, outputNanoUsdPerMTok: 600_000_000, cachedInputNanoUsdPerMTok: 75_000_000, cacheWriteNanoUsdPerMTok: 0 };

export const MAX_TOKENS = 100;

/**
 * A chat body naming `marker` whose byte length is even, so ten times its worst case is a whole
 * number of micro-USD (a budget the API accepts exactly).
 */
export function chatBody(marker: string): string {
  let content = `Budget call ${marker}`;
  let body = JSON.stringify({ model: "gpt-4o-mini", max_tokens: MAX_TOKENS, messages: [{ role: "user", content }] });
  if (Buffer.byteLength(body) % 2 === 1) {
    content += ".";
    body = JSON.stringify({ model: "gpt-4o-mini", max_tokens: MAX_TOKENS, messages: [{ role: "user", content }] });
  }
  return body;
}

/** What Keyport reserves for `chatBody(marker)`. */
export function worstCaseOf(body: string): number {
  return worstCaseNanoUsd({ bodyBytes: Buffer.byteLength(body), maxOutputTokens: MAX_TOKENS, model: "gpt-4o-mini", prices: MINI_PRICES });
}

export async function chat(keyport: TestKeyport, token: string, body: string): Promise<TestResponse> {
  return keyport.request("POST", "/openai/v1/chat/completions", { token, rawBody: body, headers: { "content-type": "application/json" } });
}

export async function putLimits(keyport: TestKeyport, token: string, body: Record<string, unknown>): Promise<TestResponse> {
  const response = await keyport.request("PUT", "/api/v1/limits", { token, body });
  expect(response.status, response.text).toBe(200);
  return response;
}

/** Asserts the OpenAI-shaped budget refusal. */
export function expectBudgetRefusal(response: TestResponse, cap: RegExp): void {
  expect(response.status, response.text).toBe(429);
  expect(response.headers.get("x-should-retry")).toBe("false");
  expect(response.body.error).toMatchObject({ type: "insufficient_quota", code: "budget_exceeded" });
  expect(response.body.error.message).toMatch(cap);
  expect(response.body.error.message).toMatch(/resets at \d{4}-\d{2}-01T00:00:00\.000Z/);
}

/** Polls until `check` passes (records and events are written off the call's path). */
export async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (check(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
