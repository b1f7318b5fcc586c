import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deleteTestKeys, describeRedis, openTestRedis, uniqueTestPrefix } from "../../test/support/redis.js";
import { addressKeyOf, createAuthFailureThrottle } from "./auth-failure-throttle.js";
import { createMemoryRateLimiter } from "./memory-rate-limiter.js";
import { createRedisBlockBroadcast } from "./redis-block-broadcast.js";
import { createRedisRateLimiter } from "./redis-rate-limiter.js";

function memoryThrottle(points: number, maxBlocked?: number) {
  return createAuthFailureThrottle({
    failures: createMemoryRateLimiter({ points, durationSeconds: 60, keyPrefix: "auth-test" }),
    ...(maxBlocked === undefined ? {} : { maxBlocked }),
  });
}

describe("auth failure throttle", () => {
  it("blocks an address once it has used up its failures, until the window ends", async () => {
    const throttle = memoryThrottle(3);
    const outcomes = [];
    for (let attempt = 0; attempt < 3; attempt += 1) {
      expect(throttle.blockedForMs("198.51.100.1")).toBe(0);
      outcomes.push(await throttle.recordFailure("198.51.100.1"));
    }
    expect(outcomes.map((outcome) => outcome.overLimit)).toEqual([false, false, false]);
    expect(outcomes.map((outcome) => outcome.blockedForMs > 0)).toEqual([false, false, true]);
    const blockedFor = throttle.blockedForMs("198.51.100.1");
    expect(blockedFor).toBeGreaterThan(0);
    expect(blockedFor).toBeLessThanOrEqual(60_000);
    // Another address is not affected.
    expect(throttle.blockedForMs("198.51.100.2")).toBe(0);
  });

  it("reports a failure over the limit (counted elsewhere first) and blocks on it", async () => {
    const failures = createMemoryRateLimiter({ points: 1, durationSeconds: 60, keyPrefix: "auth-test-over" });
    const elsewhere = createAuthFailureThrottle({ failures });
    const here = createAuthFailureThrottle({ failures });
    await elsewhere.recordFailure("198.51.100.3");
    expect(here.blockedForMs("198.51.100.3")).toBe(0);
    const outcome = await here.recordFailure("198.51.100.3");
    expect(outcome.overLimit).toBe(true);
    expect(here.blockedForMs("198.51.100.3")).toBeGreaterThan(0);
  });

  it("throttles an IPv6 /64 as one address, and an IPv4-mapped address as its IPv4 address", async () => {
    const throttle = memoryThrottle(2);
    await throttle.recordFailure("2001:db8:1:2::1");
    await throttle.recordFailure("2001:db8:1:2:ffff:ffff:ffff:ffff");
    expect(throttle.blockedForMs("2001:0db8:0001:0002::abcd")).toBeGreaterThan(0);
    expect(throttle.blockedForMs("2001:db8:1:3::1")).toBe(0);

    await throttle.recordFailure("::ffff:192.0.2.1");
    await throttle.recordFailure("192.0.2.1");
    expect(throttle.blockedForMs("192.0.2.1")).toBeGreaterThan(0);
  });

  it.each([
    ["198.51.100.1", "198.51.100.1"],
    ["::ffff:198.51.100.1", "198.51.100.1"],
    ["2001:db8::1", "2001:db8:0:0::/64"],
    ["2001:DB8:0:0:1::", "2001:db8:0:0::/64"],
    ["fe80::1%eth0", "fe80:0:0:0::/64"],
    ["64:ff9b::192.0.2.1", "64:ff9b:0:0::/64"],
    ["::1", "0:0:0:0::/64"],
  ])("keys %s as %s", (address, key) => {
    expect(addressKeyOf(address)).toBe(key);
  });

  it("remembers at most maxBlocked addresses", async () => {
    const throttle = memoryThrottle(1, 2);
    for (const address of ["192.0.2.1", "192.0.2.2", "192.0.2.3"]) await throttle.recordFailure(address);
    // The oldest block gave way to the newest.
    expect([throttle.blockedForMs("192.0.2.1") > 0, throttle.blockedForMs("192.0.2.2") > 0, throttle.blockedForMs("192.0.2.3") > 0]).toEqual([
      false,
      true,
      true,
    ]);
  });
});

await describeRedis("auth failure throttle on Redis", (url) => {
  const prefix = uniqueTestPrefix("auth-fail");
  let redis: [Redis, Redis];
  let subscribers: [Redis, Redis];
  beforeAll(async () => {
    redis = [await openTestRedis(url, "keyport-test-auth-1"), await openTestRedis(url, "keyport-test-auth-2")];
    subscribers = [await openTestRedis(url, "keyport-test-auth-sub-1"), await openTestRedis(url, "keyport-test-auth-sub-2")];
  });
  afterAll(async () => {
    await deleteTestKeys(redis[0], prefix);
    await Promise.all([...redis, ...subscribers].map((connection) => connection.quit()));
  });

  function instance(index: 0 | 1) {
    return createAuthFailureThrottle({
      failures: createRedisRateLimiter({ redis: redis[index], points: 5, durationSeconds: 60, keyPrefix: `${prefix}failures:` }),
      broadcast: createRedisBlockBroadcast({ redis: redis[index], subscriber: subscribers[index], channel: `${prefix}blocks` }),
    });
  }

  it("shares the count between two instances and blocks the address on both, before either checks another token", async () => {
    const [a, b] = [instance(0), instance(1)];
    // Let both subscriptions go live.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const address = "203.0.113.77";
    for (let attempt = 0; attempt < 3; attempt += 1) await a.recordFailure(address);
    expect((await b.recordFailure(address)).blockedForMs).toBe(0);
    // The fifth failure, counted on B, uses up the shared allowance: 5 in total, not 5 each.
    expect((await b.recordFailure(address)).blockedForMs).toBeGreaterThan(0);
    expect(b.blockedForMs(address)).toBeGreaterThan(0);
    // A counted only three, and learns of the block from B's announcement.
    await expect.poll(() => a.blockedForMs(address), { timeout: 2_000 }).toBeGreaterThan(0);
    await Promise.all([a.close(), b.close()]);
  });
});
