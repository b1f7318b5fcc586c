import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import type { MockProvider, RecordedRequest } from "../../src/mock-provider/types.js";

/**
 * The official SDKs pointed at a Keyport instance, the way a platform backend would use them.
 * Retries are off: a test must see Keyport's own answer (a 429 retried by the SDK would sleep).
 */
export function openAiThrough(keyportUrl: string, apiKey: string): OpenAI {
  return new OpenAI({ baseURL: `${keyportUrl}/openai/v1`, apiKey, maxRetries: 0 });
}

export function anthropicThrough(keyportUrl: string, apiKey: string): Anthropic {
  return new Anthropic({ baseURL: `${keyportUrl}/anthropic`, apiKey, maxRetries: 0 });
}

/** The key one recorded upstream request carried (`x-api-key` or `Authorization: Bearer`). */
export function upstreamKeyOf(request: RecordedRequest): string | undefined {
  const apiKey = request.headers["x-api-key"];
  if (apiKey !== undefined && apiKey !== "") return apiKey;
  return /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? "")?.[1];
}

/** Inference calls (chat completions, messages) the mock received, from position `since` on. */
export function inferenceCalls(mock: MockProvider, since = 0): RecordedRequest[] {
  return mock
    .requests()
    .slice(since)
    .filter((request) => request.method === "POST" && (request.path === "/v1/chat/completions" || request.path === "/v1/messages"));
}

/** Polls `condition` until it holds; throws with `what` when it still does not after `timeoutMs`. */
export async function waitUntil(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Every header of a response as text, for checks that nothing secret is in them. */
export function headersText(headers: Headers | undefined): string {
  return headers === undefined ? "" : JSON.stringify([...headers.entries()]);
}
