import type { Redis } from "ioredis";
import type { Tier } from "../config/tiers.js";
import { AppError } from "../lib/errors.js";
import { redisUnavailable } from "../redis/connect-redis.js";
import { assertTierLimits, toTierLimitResult } from "./memory-tier-limiter.js";
import type { TierLimiter, TierLimitResult } from "./tier-limiter.js";

/** ioredis registers the script under this name (EVALSHA, falling back to EVAL on NOSCRIPT). */
const COMMAND_NAME = "keyportTierCheck";

/**
 * One atomic check of both windows. KEYS: the owner's minute and day counters. ARGV: the tier's
 * per-minute and per-day limits. Windows come from the server's clock (`TIME`), so every instance
 * agrees on them whatever its own clock says. A counter key lives exactly until its window ends
 * (`EXPIREAT`), so an existing key always belongs to the current window and no window number is
 * needed in the key name, which keeps every key declared (and both in one cluster slot).
 * A refused call is taken back from both counters, so it never counts.
 * Returns { allowed (1/0), minute count, day count, seconds to minute reset, seconds to day reset }.
 */
const TIER_CHECK_SCRIPT = `
local minuteLimit = tonumber(ARGV[1])
local dayLimit = tonumber(ARGV[2])
local now = tonumber(redis.call('TIME')[1])
local minuteEnd = now - (now % 60) + 60
local dayEnd = now - (now % 86400) + 86400
local minuteCount = redis.call('INCR', KEYS[1])
redis.call('EXPIREAT', KEYS[1], minuteEnd)
local dayCount = redis.call('INCR', KEYS[2])
redis.call('EXPIREAT', KEYS[2], dayEnd)
local allowed = 1
if minuteCount > minuteLimit or dayCount > dayLimit then
  minuteCount = redis.call('DECR', KEYS[1])
  dayCount = redis.call('DECR', KEYS[2])
  allowed = 0
end
return { allowed, minuteCount, dayCount, minuteEnd - now, dayEnd - now }
`;

type TierCheckCommand = {
  [COMMAND_NAME](minuteKey: string, dayKey: string, minuteLimit: number, dayLimit: number): Promise<unknown>;
};

/**
 * Tier limits shared by every instance through Redis: one round trip per check (a Lua script),
 * same semantics as the memory limiter. An unreachable Redis rejects with an `unavailable`
 * AppError; whether the call then goes ahead is the caller's policy (fail open by default).
 * The connection belongs to the caller: `close()` leaves it open.
 */
export function createRedisTierLimiter(options: {
  redis: Redis;
  /** In front of every counter key: `KEYPORT_REDIS_PREFIX` and `rl:`. */
  keyPrefix: string;
}): TierLimiter {
  const prefix = options.keyPrefix;
  options.redis.defineCommand(COMMAND_NAME, { numberOfKeys: 2, lua: TIER_CHECK_SCRIPT });
  // defineCommand adds the method at run time; ioredis cannot type it.
  const redis = options.redis as Redis & TierCheckCommand;

  return {
    async check(owner: string, tier: Tier): Promise<TierLimitResult> {
      assertTierLimits(tier);
      // The hash tag keeps both counters of an owner in one slot for Redis Cluster and proxies.
      const ownerKey = `${prefix}{${owner}}`;
      let reply: unknown;
      try {
        reply = await redis[COMMAND_NAME](`${ownerKey}:minute`, `${ownerKey}:day`, tier.requestsPerMinute, tier.requestsPerDay);
      } catch (error) {
        throw redisUnavailable(error, "Rate limiting is temporarily unavailable");
      }
      const [allowed, minuteCount, dayCount, minuteResetSeconds, dayResetSeconds] = parseReply(reply);
      return toTierLimitResult(tier, allowed === 1, { minuteCount, dayCount, minuteResetSeconds, dayResetSeconds });
    },
    async close(): Promise<void> {},
  };
}

function parseReply(reply: unknown): [number, number, number, number, number] {
  if (Array.isArray(reply) && reply.length === 5 && reply.every((value) => Number.isSafeInteger(value))) {
    return reply as [number, number, number, number, number];
  }
  throw new AppError("internal", "Internal error", { internal: { reason: "unexpected reply from the tier check script" } });
}
