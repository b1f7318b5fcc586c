import { createRedisCacheCoordinator } from "./cache/redis-coordinator.js";
import { createRedisBlockBroadcast } from "./limits/redis-block-broadcast.js";
import { createRedisRateLimiter } from "./limits/redis-rate-limiter.js";
import { createRedisTierLimiter } from "./limits/redis-tier-limiter.js";
import { connectRedis, waitForRedis } from "./redis/connect-redis.js";

/**
 * The Redis-backed pieces of a scaled-out deployment, built together. Part of the composition
 * root; `app.ts` loads it only when REDIS_URL is set, so a single instance never loads ioredis.
 */
export async function createRedisServices(url: string, prefix: string) {
  const client = connectRedis(url, { name: "keyport" });
  const subscriber = connectRedis(url, { name: "keyport-invalidations" });
  const quit = async () => void (await Promise.all([client.quit(), subscriber.quit()]));
  try {
    // No offline queue: commands fail fast while Redis is down, so wait for it once at start.
    await Promise.all([waitForRedis(client), waitForRedis(subscriber)]);
    const coordinator = createRedisCacheCoordinator({ redis: client, subscriber, channel: `${prefix}key-changes`, keyPrefix: `${prefix}keyver:` });
    await coordinator.ready();
    return {
      coordinator,
      tierLimiter: createRedisTierLimiter({ redis: client, keyPrefix: `${prefix}rl:` }),
      /** A counter shared by every instance; `name` keeps each limiter's keys apart. */
      rateLimiter: (options: { name: string; points: number; durationSeconds: number }) =>
        createRedisRateLimiter({ redis: client, points: options.points, durationSeconds: options.durationSeconds, keyPrefix: `${prefix}${options.name}:` }),
      /** Blocked addresses announced to every instance (on the invalidation subscriber's connection). */
      blockBroadcast: (name: string) => createRedisBlockBroadcast({ redis: client, subscriber, channel: `${prefix}${name}` }),
      ping: () => client.ping(),
      quit,
    };
  } catch (error) {
    await quit().catch(() => undefined);
    throw error;
  }
}
