import type { Redis } from "ioredis";
import { redisUnavailable } from "../redis/connect-redis.js";
import type { BlockBroadcast } from "./auth-failure-throttle.js";

/** No block outlasts the failure window; a longer announcement is a bug or forged. */
const MAX_BLOCK_MS = 60 * 60_000;

/**
 * Announces blocked addresses over Redis pub/sub (`<ms>:<address key>`). `subscriber` must be a
 * connection used only for subscriptions (it may carry other channels: messages are filtered by
 * channel). A lost message costs one extra signature check on the instance that missed it (it
 * then learns of the block from the shared counter). Both connections belong to the caller.
 */
export function createRedisBlockBroadcast(options: { redis: Redis; subscriber: Redis; channel: string }): BlockBroadcast {
  const { redis, subscriber, channel } = options;
  const handlers: Array<(addressKey: string, blockedForMs: number) => void> = [];
  let isClosed = false;

  const onMessage = (from: string, message: string) => {
    if (from !== channel || isClosed) return;
    const separator = message.indexOf(":");
    const blockedForMs = Number(message.slice(0, separator));
    const addressKey = message.slice(separator + 1);
    if (separator < 1 || !Number.isSafeInteger(blockedForMs) || blockedForMs <= 0 || blockedForMs > MAX_BLOCK_MS || addressKey === "") return;
    for (const handler of handlers) handler(addressKey, blockedForMs);
  };
  subscriber.on("message", onMessage);

  // With no offline queue a SUBSCRIBE sent before the connection is ready fails, so subscribe on
  // every `ready` (ioredis also resubscribes after reconnects).
  const subscribe = () => {
    if (!isClosed) subscriber.subscribe(channel).catch(() => {});
  };
  subscriber.on("ready", subscribe);
  if (subscriber.status === "ready") subscribe();

  return {
    async announce(addressKey, blockedForMs) {
      try {
        await redis.publish(channel, `${Math.ceil(blockedForMs)}:${addressKey}`);
      } catch (error) {
        throw redisUnavailable(error, "Authentication throttling is temporarily unavailable");
      }
    },
    onBlock(handler) {
      handlers.push(handler);
    },
    async close() {
      if (isClosed) return;
      isClosed = true;
      handlers.length = 0;
      subscriber.off("message", onMessage);
      subscriber.off("ready", subscribe);
      if (subscriber.status === "ready") await subscriber.unsubscribe(channel).catch(() => {});
    },
  };
}
