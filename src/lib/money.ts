/** Money is integer nano-USD everywhere inside Keyport; only the API shows USD. */
export const NANO_PER_USD = 1_000_000_000;

export function usdToNano(usd: number): number {
  return Math.round(usd * NANO_PER_USD);
}

export function nanoToUsd(nano: number): number {
  return nano / NANO_PER_USD;
}

/**
 * Largest USD amount a limit may hold: a million dollars a month. In nano-USD it stays far below
 * 2^53 (about 9 million dollars), so counters and sums stay exact integers in JavaScript and Lua.
 */
export const MAX_LIMIT_USD = 1_000_000;

/**
 * Whether `usd` is a limit Keyport keeps exactly: finite, from 0 to `MAX_LIMIT_USD`, with at
 * most 6 decimals (a millionth of a dollar; the float's own noise is tolerated).
 */
export function isLimitUsd(usd: unknown): usd is number {
  if (typeof usd !== "number" || !Number.isFinite(usd) || usd < 0 || usd > MAX_LIMIT_USD) return false;
  const micro = usd * 1e6;
  return Math.abs(micro - Math.round(micro)) <= 1e-6 + Math.abs(micro) * 1e-12;
}
