import RateLimiterMemory from "rate-limiter-flexible/lib/RateLimiterMemory.js";
import RateLimiterRes from "rate-limiter-flexible/lib/RateLimiterRes.js";
import type { RateLimiter, RateLimitResult } from "./ports.js";

/**
 * Single-instance limiter (SQLite mode). Counters live in this process only; several instances
 * need the Redis limiter instead.
 */
export function createMemoryRateLimiter(options: { points: number; durationSeconds: number; keyPrefix: string }): RateLimiter {
  const limiter = new RateLimiterMemory({
    points: options.points,
    duration: options.durationSeconds,
    keyPrefix: options.keyPrefix,
  });
  return {
    async consume(key: string): Promise<RateLimitResult> {
      try {
        const result = await limiter.consume(key);
        return { allowed: true, limit: options.points, remaining: result.remainingPoints, resetMs: result.msBeforeNext };
      } catch (rejection) {
        if (rejection instanceof RateLimiterRes) {
          return { allowed: false, limit: options.points, remaining: 0, resetMs: rejection.msBeforeNext };
        }
        throw rejection;
      }
    },
  };
}
