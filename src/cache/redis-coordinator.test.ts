import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, expect, it, vi } from "vitest";
import { deleteTestKeys, describeRedis, openTestRedis, uniqueTestPrefix } from "../../test/support/redis.js";
import { connectRedis } from "../redis/connect-redis.js";
import { createKeyCache } from "./key-cache.js";
import { createRedisCacheCoordinator, type RedisCacheCoordinator } from "./redis-coordinator.js";

await describeRedis("redis cache coordinator", (url) => {
  const prefix = uniqueTestPrefix("cache");
  const channel = `${prefix}invalidate`;
  const connections: Redis[] = [];
  const coordinators: RedisCacheCoordinator[] = [];
  let admin: Redis;

  /** One instance: its own command connection and subscriber connection, as separate processes would have. */
  async function newInstance(name: string) {
    const redis = await openTestRedis(url, `keyport-test-${name}`);
    const subscriber = await openTestRedis(url, `keyport-test-${name}-sub`);
    connections.push(redis, subscriber);
    const coordinator = createRedisCacheCoordinator({ redis, subscriber, channel, keyPrefix: prefix });
    coordinators.push(coordinator);
    await coordinator.ready();
    return coordinator;
  }

  beforeAll(async () => {
    admin = await openTestRedis(url, "keyport-test-cache-admin");
  });
  afterEach(async () => {
    await Promise.all(coordinators.splice(0).map((coordinator) => coordinator.close()));
  });
  afterAll(async () => {
    await deleteTestKeys(admin, prefix);
    await Promise.all([admin, ...connections].map((connection) => connection.quit()));
  });

  it("two instances: after A invalidates, B's very next read reloads, and B's entry is evicted eagerly", async () => {
    const coordinatorA = await newInstance("a");
    const coordinatorB = await newInstance("b");
    const instanceA = createKeyCache<string>({ maxEntries: 100, ttlMs: 60_000, coordinator: coordinatorA });
    const instanceB = createKeyCache<string>({ maxEntries: 100, ttlMs: 60_000, coordinator: coordinatorB });
    const seenByB: string[] = [];
    coordinatorB.onInvalidate((owner) => seenByB.push(owner));
    let stored = "key_old";
    const load = vi.fn(async () => stored);

    expect(await instanceB.get("user:a", "openai", load)).toBe("key_old");
    expect(await instanceB.get("user:a", "openai", load)).toBe("key_old");
    expect(load).toHaveBeenCalledTimes(1);

    stored = "key_new"; // the change is committed, then announced
    await instanceA.invalidate("user:a");
    // No waiting: the version check alone makes B reload.
    expect(await instanceB.get("user:a", "openai", load)).toBe("key_new");
    expect(load).toHaveBeenCalledTimes(2);

    // The pub/sub message frees B's memory without any read by B. Wait for the first message
    // (it may land after the reload and drop that entry), then cache two owners on B.
    await vi.waitFor(() => expect(seenByB).toContain("user:a"), { timeout: 2_000, interval: 10 });
    await instanceB.get("user:a", "openai", load);
    await instanceB.get("user:b", "openai", async () => "b");
    expect(instanceB.size()).toBe(2);
    await instanceA.invalidate("user:b");
    await vi.waitFor(() => expect(instanceB.size()).toBe(1), { timeout: 2_000, interval: 10 });
  });

  it("starts owners at version 0 and moves only the bumped owner's version, for every instance", async () => {
    const coordinatorA = await newInstance("versions-a");
    const coordinatorB = await newInstance("versions-b");
    expect(await coordinatorA.version("user:v")).toBe(0);
    await coordinatorA.bump("user:v");
    const first = await coordinatorB.version("user:v");
    expect(first).toBeGreaterThan(0);
    await coordinatorB.bump("user:v");
    expect(await coordinatorA.version("user:v")).toBeGreaterThan(first);
    expect(await coordinatorA.version("user:other")).toBe(0);
  });

  it("never hands back an old version after Redis lost the key", async () => {
    const coordinator = await newInstance("lost");
    await coordinator.bump("user:lost");
    const before = await coordinator.version("user:lost");
    await admin.del(`${prefix}user:lost`);
    await coordinator.bump("user:lost");
    expect(await coordinator.version("user:lost")).toBeGreaterThanOrEqual(before);
    expect(await coordinator.version("user:lost")).not.toBe(before);
  });

  it("keeps the version key with a long expiry, refreshed on every bump", async () => {
    const coordinator = await newInstance("ttl");
    await coordinator.bump("user:ttl");
    await admin.expire(`${prefix}user:ttl`, 10);
    await coordinator.bump("user:ttl");
    const ttl = await admin.ttl(`${prefix}user:ttl`);
    expect(ttl).toBeGreaterThan(6 * 86_400);
    expect(ttl).toBeLessThanOrEqual(7 * 86_400);
  });

  it("delivers invalidations from every instance (itself included) and ignores other channels", async () => {
    const coordinatorA = await newInstance("messages-a");
    const coordinatorB = await newInstance("messages-b");
    const seen: string[] = [];
    coordinatorB.onInvalidate((owner) => seen.push(owner));
    await admin.publish(`${prefix}other-channel`, "user:elsewhere");
    await coordinatorA.bump("user:from-a");
    await coordinatorB.bump("user:from-b");
    await vi.waitFor(() => expect(seen).toEqual(["user:from-a", "user:from-b"]), { timeout: 2_000, interval: 10 });
  });

  it("stops delivering after close, and leaves the connections open", async () => {
    const coordinatorA = await newInstance("close-a");
    const coordinatorB = await newInstance("close-b");
    const seen: string[] = [];
    coordinatorB.onInvalidate((owner) => seen.push(owner));
    await coordinatorB.close();
    await coordinatorA.bump("user:after-close");
    // A message seen by A's own handler proves delivery happened; B must not have seen it.
    const seenByA: string[] = [];
    coordinatorA.onInvalidate((owner) => seenByA.push(owner));
    await coordinatorA.bump("user:marker");
    await vi.waitFor(() => expect(seenByA).toContain("user:marker"), { timeout: 2_000, interval: 10 });
    expect(seen).toEqual([]);
    expect(await coordinatorB.version("user:after-close")).toBeGreaterThan(0);
  });

  it("rejects with an unavailable AppError at once when Redis cannot be reached", async () => {
    const down = connectRedis("redis://127.0.0.1:1", { name: "keyport-test-down" });
    const downSubscriber = connectRedis("redis://127.0.0.1:1", { name: "keyport-test-down-sub" });
    try {
      const coordinator = createRedisCacheCoordinator({ redis: down, subscriber: downSubscriber, channel, keyPrefix: prefix });
      await expect(coordinator.version("user:a")).rejects.toMatchObject({ code: "unavailable", internal: { backend: "redis" } });
      await expect(coordinator.bump("user:a")).rejects.toMatchObject({ code: "unavailable" });
      await expect(coordinator.ready(50)).rejects.toMatchObject({ code: "unavailable" });
      // A cache on top keeps serving from the database, caching nothing.
      const errors: unknown[] = [];
      const cache = createKeyCache<string>({ maxEntries: 10, ttlMs: 1_000, coordinator, onCoordinatorError: (error) => errors.push(error) });
      expect(await cache.get("user:a", "openai", async () => "from-database")).toBe("from-database");
      expect(cache.size()).toBe(0);
      expect(errors).toHaveLength(1);
      await expect(cache.invalidate("user:a")).rejects.toMatchObject({ code: "unavailable" });
      await coordinator.close();
    } finally {
      down.disconnect();
      downSubscriber.disconnect();
    }
  });
});
