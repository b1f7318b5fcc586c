/** A tier sets platform-key rate limits and whether the owner's own keys (BYOK) are used. */
export type Tier = {
  /** Platform-key requests per minute. */
  requestsPerMinute: number;
  /** Platform-key requests per day. */
  requestsPerDay: number;
  /** Whether the owner's stored keys are used for calls. Stored keys stay stored either way. */
  byokAllowed: boolean;
  /**
   * Hard cap on what one owner may spend on the platform key in a UTC calendar month, in nano-USD
   * (`platformMonthlyBudgetUsd` in `KEYPORT_TIERS`); absent: no cap.
   */
  platformMonthlyBudgetNanoUsd?: number;
};

export const DEFAULT_TIERS: Readonly<Record<string, Tier>> = Object.freeze({
  community: { requestsPerMinute: 10, requestsPerDay: 100, byokAllowed: false },
  subscriber: { requestsPerMinute: 30, requestsPerDay: 500, byokAllowed: false },
  premium: { requestsPerMinute: 100, requestsPerDay: 2000, byokAllowed: true },
  lifetime: { requestsPerMinute: 100, requestsPerDay: 2000, byokAllowed: true },
});

/** Tier names double as JWT claim values and map keys, so their grammar is strict. */
export const TIER_NAME_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;
