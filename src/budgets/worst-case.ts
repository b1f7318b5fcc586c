import { UNPRICED_FALLBACK, type UnitPrices } from "../store/ports.js";
import { outputCeilingOf } from "./output-ceilings.js";

/** Prices used to reserve (and settle) a call whose model has no price in the table. */
export { UNPRICED_FALLBACK };

/**
 * The most a call can cost, in nano-USD: every byte of the body counted as an input token (a
 * token is never shorter than a byte of UTF-8 text, so this over-estimates, never under) plus
 * the output limit the request sets (`max_tokens` and its aliases), or the model's documented
 * ceiling when it sets none, each at the model's price (the fallback when it has none), rounded
 * up. The over-estimate is held only until the call settles to its real cost.
 */
export function worstCaseNanoUsd(input: { bodyBytes: number; maxOutputTokens: number | undefined; model: string | undefined; prices: UnitPrices | null }): number {
  const prices = input.prices ?? UNPRICED_FALLBACK;
  const outputTokens = input.maxOutputTokens ?? outputCeilingOf(input.model);
  const inputPrice = Math.max(prices.inputNanoUsdPerMTok, prices.cacheWriteNanoUsdPerMTok);
  const total = BigInt(input.bodyBytes) * BigInt(inputPrice) + BigInt(outputTokens) * BigInt(prices.outputNanoUsdPerMTok);
  const nano = (total + 999_999n) / 1_000_000n;
  return nano <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(nano) : Number.MAX_SAFE_INTEGER;
}

/** A client's output limit: a positive safe integer, else `undefined` (the provider will refuse a bad one anyway). */
export function toOutputLimit(value: unknown): number | undefined {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0 ? value : undefined;
}
