import type { Redis } from "ioredis";
import { AppError } from "../lib/errors.js";
import { redisUnavailable } from "../redis/connect-redis.js";
import type { RateLimiter, RateLimitResult } from "./ports.js";

/** ioredis registers the script under this name (EVALSHA, falling back to EVAL on NOSCRIPT). */
const COMMAND_NAME = "keyportRateLimitConsume";

/**
 * One atomic consume. KEYS: the counter. ARGV: points, window in milliseconds. The window starts
 * at the first consume (the counter's expiry), as the memory limiter's does. A refused consume is
 * taken back, so retrying while refused never counts. Returns { allowed (1/0), count, ms to reset }.
 */
const CONSUME_SCRIPT = `
local points = tonumber(ARGV[1])
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  ttl = tonumber(ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ttl)
end
if count > points then
  count = redis.call('DECR', KEYS[1])
  return { 0, count, ttl }
end
return { 1, count, ttl }
`;

type ConsumeCommand = {
  [COMMAND_NAME](key: string, points: number, durationMs: number): Promise<unknown>;
};

/**
 * A fixed-window counter per key shared by every instance through Redis: one round trip per
 * consume (a Lua script). Same semantics as `createMemoryRateLimiter`. An unreachable Redis
 * rejects with an `unavailable` AppError; the caller decides what that means. The connection
 * belongs to the caller.
 */
export function createRedisRateLimiter(options: { redis: Redis; points: number; durationSeconds: number; keyPrefix: string }): RateLimiter {
  const { points, durationSeconds, keyPrefix } = options;
  if (!Number.isSafeInteger(points) || points < 1) throw new Error("points must be a positive integer");
  if (!Number.isSafeInteger(durationSeconds) || durationSeconds < 1) throw new Error("durationSeconds must be a positive integer");
  options.redis.defineCommand(COMMAND_NAME, { numberOfKeys: 1, lua: CONSUME_SCRIPT });
  // defineCommand adds the method at run time; ioredis cannot type it.
  const redis = options.redis as Redis & ConsumeCommand;
  const durationMs = durationSeconds * 1000;

  return {
    async consume(key: string): Promise<RateLimitResult> {
      let reply: unknown;
      try {
        reply = await redis[COMMAND_NAME](`${keyPrefix}${key}`, points, durationMs);
      } catch (error) {
        throw redisUnavailable(error, "Rate limiting is temporarily unavailable");
      }
      const [allowed, count, resetMs] = parseReply(reply);
      return { allowed: allowed === 1, limit: points, remaining: Math.max(0, points - count), resetMs };
    },
  };
}

function parseReply(reply: unknown): [number, number, number] {
  if (Array.isArray(reply) && reply.length === 3 && reply.every((value) => Number.isSafeInteger(value))) {
    return reply as [number, number, number];
  }
  throw new AppError("internal", "Internal error", { internal: { reason: "unexpected reply from the rate-limit script" } });
}
