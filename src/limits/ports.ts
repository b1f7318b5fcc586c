/** Outcome of one rate-limit check. Denial is a value, never an exception. */
export type RateLimitResult = {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Milliseconds until the window resets. */
  resetMs: number;
};

/** A fixed-window counter per key (owner, owner+route…). */
export type RateLimiter = {
  consume(key: string): Promise<RateLimitResult>;
};
