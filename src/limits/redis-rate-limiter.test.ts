import type { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { deleteTestKeys, describeRedis, openTestRedis, uniqueTestPrefix } from "../../test/support/redis.js";
import { isAppError } from "../lib/errors.js";
import { connectRedis } from "../redis/connect-redis.js";
import { runRateLimiterContract } from "./rate-limiter.contract.js";
import { createRedisRateLimiter } from "./redis-rate-limiter.js";

await describeRedis("redis rate limiter", (url) => {
  const prefix = uniqueTestPrefix("rate");
  let first: Redis;
  let second: Redis;
  beforeAll(async () => {
    first = await openTestRedis(url, "keyport-test-rate-1");
    second = await openTestRedis(url, "keyport-test-rate-2");
  });
  afterAll(async () => {
    await deleteTestKeys(first, prefix);
    await Promise.all([first.quit(), second.quit()]);
  });

  runRateLimiterContract("redis", async ({ points, durationSeconds }) =>
    createRedisRateLimiter({ redis: first, points, durationSeconds, keyPrefix: prefix }),
  );

  it("shares one count between two instances: 10 allowed in total, not 20", async () => {
    const instanceA = createRedisRateLimiter({ redis: first, points: 10, durationSeconds: 60, keyPrefix: prefix });
    const instanceB = createRedisRateLimiter({ redis: second, points: 10, durationSeconds: 60, keyPrefix: prefix });
    const results = await Promise.all(Array.from({ length: 20 }, (_, index) => (index % 2 === 0 ? instanceA : instanceB).consume("user:shared")));
    expect(results.filter((result) => result.allowed)).toHaveLength(10);
    // Refused consumes were taken back; the counter expires with its window.
    expect(await first.get(`${prefix}user:shared`)).toBe("10");
    const ttl = await first.pttl(`${prefix}user:shared`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it("rejects with `unavailable` when Redis does not answer", async () => {
    const closed = connectRedis("redis://127.0.0.1:1", { name: "keyport-test-rate-down" });
    const limiter = createRedisRateLimiter({ redis: closed, points: 1, durationSeconds: 60, keyPrefix: prefix });
    const error = await limiter.consume("user:x").catch((caught: unknown) => caught);
    expect(isAppError(error) && error.code).toBe("unavailable");
    closed.disconnect();
  });
});
