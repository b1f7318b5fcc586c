import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { dependencyHint } from "./app-health.js";
import { createRedisBudgetLedger } from "./budgets/redis-budget-ledger.js";
import { createRedisCacheCoordinator } from "./cache/redis-coordinator.js";
import type { Config } from "./config/config-schema.js";
import type { HealthRegistry } from "./lib/health-registry.js";
import { createRedisBlockBroadcast } from "./limits/redis-block-broadcast.js";
import { createRedisRateLimiter } from "./limits/redis-rate-limiter.js";
import { createRedisTierLimiter } from "./limits/redis-tier-limiter.js";
import { connectRedis, waitForRedis } from "./redis/connect-redis.js";
import type { BudgetRepo } from "./store/ports.js";

/**
 * Least time an owner stays uncached after a key change whose end was never announced (the
 * instance died mid-change). Kept well above any commit's duration and the key cache's TTL.
 */
const MIN_CHANGE_LEASE_MS = 5 * 60_000;

export type RedisServicesOptions = {
  url: string;
  /** In front of every key and channel (`KEYPORT_REDIS_PREFIX`). */
  prefix: string;
  /**
   * `required`: reject (with a `DependencyUnavailableError`) when Redis does not answer at start.
   * `optional`: start without it; the connections keep trying and everything Redis backs runs
   * degraded (the failure policies) until they succeed.
   */
  atStart: "required" | "optional";
  /** How long an owner stays uncached after a change whose end never arrived; see the coordinator. */
  changeLeaseMs: number;
  /** Told when the command connection becomes usable (`true`) or is lost (`false`). */
  onConnectionChange?: (isUp: boolean) => void;
  /** Told when this instance starts or stops receiving key-cache invalidations. */
  onListeningChange?: (isListening: boolean) => void;
  /** Connection errors (repeated while Redis is down); log them through the redacting logger. */
  onError?: (error: Error) => void;
};

/**
 * The Redis-backed pieces of a scaled-out deployment, built together. Part of the composition
 * root; `app.ts` loads it only when REDIS_URL is set, so a single instance never loads ioredis.
 * Every key and channel starts with `prefix`: other modules that add Redis keys take it from
 * here.
 */
export async function createRedisServices(options: RedisServicesOptions) {
  const { prefix } = options;
  const connectionOptions = options.onError === undefined ? {} : { onError: options.onError };
  const client = connectRedis(options.url, { name: "keyport", ...connectionOptions });
  const subscriber = connectRedis(options.url, { name: "keyport-invalidations", ...connectionOptions });
  if (options.onConnectionChange !== undefined) {
    const onConnectionChange = options.onConnectionChange;
    client.on("ready", () => onConnectionChange(true));
    client.on("close", () => onConnectionChange(false));
  }
  const quit = async () => void (await Promise.all([client, subscriber].map(closeConnection)));
  const coordinator = createRedisCacheCoordinator({
    redis: client,
    subscriber,
    prefix,
    changeLeaseMs: options.changeLeaseMs,
    ...(options.onListeningChange === undefined ? {} : { onListeningChange: options.onListeningChange }),
  });
  try {
    // No offline queue: commands fail fast while Redis is down, so wait for it once at start.
    await Promise.all([waitForRedis(client), waitForRedis(subscriber)]);
    await coordinator.ready();
  } catch (error) {
    if (options.atStart === "required") {
      await coordinator.close();
      await quit();
      throw error;
    }
  }
  return {
    prefix,
    /** The command connection, for other Redis-backed modules (keys under `prefix` only). */
    client,
    coordinator,
    tierLimiter: createRedisTierLimiter({ redis: client, keyPrefix: `${prefix}rl:` }),
    /** A counter shared by every instance; `name` keeps each limiter's keys apart. */
    rateLimiter: (limiter: { name: string; points: number; durationSeconds: number }) =>
      createRedisRateLimiter({ redis: client, points: limiter.points, durationSeconds: limiter.durationSeconds, keyPrefix: `${prefix}${limiter.name}:` }),
    /** Spend counters shared by every instance; `budgets` seeds a counter from the database once a month. */
    budgetLedger: (budgets: Pick<BudgetRepo, "settledSpend">) => createRedisBudgetLedger({ redis: client, keyPrefix: `${prefix}bud:`, budgets }),
    /** Blocked addresses announced to every instance (on the invalidation subscriber's connection). */
    blockBroadcast: (name: string) => createRedisBlockBroadcast({ redis: client, subscriber, channel: `${prefix}${name}` }),
    ping: () => client.ping(),
    /** Whether the command connection is usable right now. */
    isUp: () => client.status === "ready",
    quit,
  };
}

export type RedisServices = Awaited<ReturnType<typeof createRedisServices>>;

/** QUIT when connected (lets pending replies arrive); otherwise stop reconnecting at once. */
async function closeConnection(connection: Redis): Promise<void> {
  if (connection.status === "ready") {
    await connection.quit().catch(() => connection.disconnect());
  } else {
    connection.disconnect();
  }
}

/**
 * Connects to Redis. With `KEYPORT_RATE_LIMIT_ON_ERROR=open` an unreachable Redis does not stop
 * the start: Keyport serves degraded (see the health registry) and picks Redis up when it answers.
 * With `closed` it rejects with a `DependencyUnavailableError`.
 */
export async function startRedis(config: Config, url: string, health: HealthRegistry, logger: Logger): Promise<RedisServices> {
  const redis = await createRedisServices({
    url,
    prefix: config.redisPrefix,
    atStart: config.gateway.rateLimitOnError === "open" ? "optional" : "required",
    changeLeaseMs: Math.max(MIN_CHANGE_LEASE_MS, 2 * config.gateway.keyCacheTtlMs),
    onConnectionChange: (isUp) => health.setDependency("redis", isUp),
    onListeningChange: (isListening) => health.setKeyCacheListening(isListening),
  });
  health.setDependency("redis", redis.isUp());
  health.setKeyCacheListening(redis.coordinator.isListening());
  if (!redis.isUp()) {
    logger.warn(
      { dependency: "redis", check: dependencyHint(config, "redis") },
      "Redis is not reachable: starting degraded (platform rate limits not enforced, key changes refused) until it answers",
    );
  }
  return redis;
}
