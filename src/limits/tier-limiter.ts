import type { Tier } from "../config/tiers.js";

/** One platform-key call checked against the owner's tier: per minute and per day. */
export type TierLimitResult = {
  allowed: boolean;
  /** The window that decides the headers: the one that refused, else the one with less room. */
  window: "minute" | "day";
  limit: number;
  remaining: number;
  /** Seconds until that window resets. */
  resetSeconds: number;
};

/**
 * Platform-key rate limits per owner. Fixed windows aligned to the minute and the UTC day; a
 * refused call does not count. Memory on one instance, Redis (one atomic round trip) across many.
 * Denial is a value, never an exception; an unreachable backend throws.
 */
export type TierLimiter = {
  check(owner: string, tier: Tier): Promise<TierLimitResult>;
  close(): Promise<void>;
};
