import type { Redis } from "ioredis";
import { AppError } from "../lib/errors.js";
import { redisUnavailable } from "../redis/connect-redis.js";
import type { CacheCoordinator } from "./cache-coordinator.js";

const DEFAULT_CHANNEL = "keyport:cache:invalidate";
const DEFAULT_KEY_PREFIX = "keyport:cache:version:";

/** A version key outlives any cache entry by far; refreshed on every bump. */
const VERSION_TTL_SECONDS = 7 * 86_400;

/** Default wait for the subscription in `ready()`. */
const READY_TIMEOUT_MS = 5_000;

/** ioredis registers the script under this name (EVALSHA, falling back to EVAL on NOSCRIPT). */
const COMMAND_NAME = "keyportCacheBump";

/**
 * Moves the owner's version and announces it, in one round trip. KEYS: the version key. ARGV:
 * expiry seconds, channel, owner. The next version is the larger of "current + 1" and the
 * server's clock in microseconds (two bumps within one millisecond happen), so even after Redis lost its data (restart without persistence,
 * an expired key) a version never comes back to a value some cache may still hold.
 */
const BUMP_SCRIPT = `
local time = redis.call('TIME')
local nowUs = tonumber(time[1]) * 1000000 + tonumber(time[2])
local next = (tonumber(redis.call('GET', KEYS[1])) or 0) + 1
if nowUs > next then next = nowUs end
redis.call('SET', KEYS[1], string.format('%d', next), 'EX', ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return next
`;

type BumpCommand = {
  [COMMAND_NAME](versionKey: string, ttlSeconds: number, channel: string, owner: string): Promise<unknown>;
};

/** The Redis coordinator also tells when its subscription is live, for startup and tests. */
export type RedisCacheCoordinator = CacheCoordinator & {
  /** Resolves once invalidation messages are being received; rejects after `timeoutMs` (default 5000). */
  ready(timeoutMs?: number): Promise<void>;
};

/**
 * Versions in Redis, shared by every instance; invalidations over pub/sub. `version` is one GET
 * per cache read: the price of strictness across instances (pub/sub alone can drop a message
 * while a subscriber reconnects). `subscriber` must be a connection used for nothing but
 * subscriptions (Redis puts a subscribing connection in a mode that refuses other commands).
 * Both connections belong to the caller; `close()` only unsubscribes.
 */
export function createRedisCacheCoordinator(options: {
  redis: Redis;
  subscriber: Redis;
  channel?: string;
  keyPrefix?: string;
}): RedisCacheCoordinator {
  const channel = options.channel ?? DEFAULT_CHANNEL;
  const prefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
  const subscriber = options.subscriber;
  options.redis.defineCommand(COMMAND_NAME, { numberOfKeys: 1, lua: BUMP_SCRIPT });
  // defineCommand adds the method at run time; ioredis cannot type it.
  const redis = options.redis as Redis & BumpCommand;
  const handlers: Array<(owner: string) => void> = [];
  let isClosed = false;

  const onMessage = (from: string, owner: string) => {
    if (from !== channel || isClosed) return;
    for (const handler of [...handlers]) handler(owner);
  };
  subscriber.on("message", onMessage);

  // With no offline queue a SUBSCRIBE sent before the connection is ready fails, so subscribe on
  // every `ready` (a repeated SUBSCRIBE is harmless; ioredis also resubscribes after reconnects).
  let subscribed: Promise<void> | undefined;
  const subscribe = () => {
    if (isClosed) return;
    subscribed = subscriber.subscribe(channel).then(() => undefined);
    subscribed.catch(() => {});
  };
  subscriber.on("ready", subscribe);
  if (subscriber.status === "ready") subscribe();

  return {
    async version(owner: string): Promise<number> {
      let raw: string | null;
      try {
        raw = await redis.get(`${prefix}${owner}`);
      } catch (error) {
        throw redisUnavailable(error, "Key cache coordination is temporarily unavailable");
      }
      const version = raw === null ? 0 : Number(raw);
      if (!Number.isSafeInteger(version)) {
        throw new AppError("internal", "Internal error", { internal: { reason: "cache version key does not hold an integer" } });
      }
      return version;
    },
    async bump(owner: string): Promise<void> {
      try {
        await redis[COMMAND_NAME](`${prefix}${owner}`, VERSION_TTL_SECONDS, channel, owner);
      } catch (error) {
        throw redisUnavailable(error, "Key cache coordination is temporarily unavailable");
      }
    },
    onInvalidate(handler: (owner: string) => void): void {
      handlers.push(handler);
    },
    async ready(timeoutMs = READY_TIMEOUT_MS): Promise<void> {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not subscribed after ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        if (subscribed === undefined) {
          await Promise.race([new Promise<void>((resolve) => subscriber.once("ready", () => resolve())), timeout]);
        }
        await Promise.race([subscribed, timeout]);
      } catch (error) {
        throw redisUnavailable(error, "Key cache coordination is temporarily unavailable");
      } finally {
        clearTimeout(timer);
      }
    },
    async close(): Promise<void> {
      if (isClosed) return;
      isClosed = true;
      handlers.length = 0;
      subscriber.off("message", onMessage);
      subscriber.off("ready", subscribe);
      if (subscriber.status === "ready") await subscriber.unsubscribe(channel).catch(() => {});
    },
  };
}
