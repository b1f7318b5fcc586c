import { isRecord } from "../lib/json-values.js";

export { isRecord };
/**
 * Deterministic "model" behind the mock: the same request always gives the same reply and the
 * same usage, so tests and benchmarks can assert exact token counts.
 *
 * - Input tokens = ceil(characters of all input text / 4), at least 1.
 * - The reply is `Mock reply:` followed by the first eight words of the last input text; each
 *   word is one output token, and `max_tokens` cuts the reply (finish reason `length` /
 *   `max_tokens`).
 * - Cached input tokens are 0, unless the request body has a top-level `"cache": true` (a
 *   mock-only switch): then half the input tokens, rounded down, count as cache reads.
 */

const REPLY_PREFIX = ["Mock", "reply:"];
const ECHOED_WORDS = 8;

export type MockReplyText = {
  /** Output words; each is one output token. */
  words: string[];
  /** `max_tokens` cut the reply short. */
  truncated: boolean;
};

export function countInputTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

export function cachedInputTokens(body: Record<string, unknown>, inputTokens: number): number {
  return body.cache === true ? Math.floor(inputTokens / 2) : 0;
}

export function generateReply(lastInputText: string, maxTokens: number | undefined): MockReplyText {
  const echoed = lastInputText.split(/\s+/).filter((word) => word.length > 0).slice(0, ECHOED_WORDS);
  const words = [...REPLY_PREFIX, ...echoed];
  if (maxTokens !== undefined && maxTokens < words.length) {
    return { words: words.slice(0, maxTokens), truncated: true };
  }
  return { words, truncated: false };
}

/** The text pieces of a message `content` in either provider's shape (string or content parts). */
export function textOfContent(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  const parts: string[] = [];
  for (const part of content) {
    if (typeof part === "string") parts.push(part);
    else if (isRecord(part) && typeof part.text === "string") parts.push(part.text);
  }
  return parts.join(" ");
}

/** A unit-length-ish vector derived from the text (FNV-1a seed, then a linear congruential walk). */
export function embeddingVector(text: string, dimensions: number): number[] {
  let state = 0x811c9dc5;
  for (let index = 0; index < text.length; index += 1) {
    state = Math.imul(state ^ text.charCodeAt(index), 0x01000193) >>> 0;
  }
  const vector: number[] = [];
  for (let index = 0; index < dimensions; index += 1) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    vector.push(Math.round((state / 0xffffffff) * 2_000_000 - 1_000_000) / 1_000_000);
  }
  return vector;
}

/** Little-endian float32, base64: OpenAI's `encoding_format: "base64"` (the `openai` SDK's default). */
export function encodeVectorBase64(vector: readonly number[]): string {
  return Buffer.from(new Float32Array(vector).buffer).toString("base64");
}


/** A positive integer field, `undefined` when absent, `"invalid"` when present but not one. */
export function positiveIntegerField(body: Record<string, unknown>, name: string): number | undefined | "invalid" {
  const value = body[name];
  if (value === undefined || value === null) return undefined;
  return typeof value === "number" && Number.isInteger(value) && value >= 1 ? value : "invalid";
}
