import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { deleteTestKeys, describeRedis, openTestRedis, uniqueTestPrefix } from "../../test/support/redis.js";
import { startTcpProxy, type TcpProxy } from "../../test/support/tcp-proxy.js";
import { connectRedis } from "../redis/connect-redis.js";
import { createKeyCache } from "./key-cache.js";
import { createRedisCacheCoordinator, type RedisCacheCoordinator, type RedisCacheCoordinatorOptions } from "./redis-coordinator.js";

await describeRedis("redis cache coordinator", (url) => {
  const prefix = uniqueTestPrefix("cache");
  const versionKey = (owner: string) => `${prefix}keyver:${owner}`;
  const connections: Redis[] = [];
  const coordinators: RedisCacheCoordinator[] = [];
  let admin: Redis;

  /** One instance: its own command connection and subscriber connection, as separate processes would have. */
  async function newInstance(name: string, options: Partial<RedisCacheCoordinatorOptions> = {}, redisUrl = url) {
    const redis = await openTestRedis(redisUrl, `keyport-test-${name}`);
    const subscriber = await openTestRedis(redisUrl, `keyport-test-${name}-sub`);
    connections.push(redis, subscriber);
    const coordinator = createRedisCacheCoordinator({ redis, subscriber, prefix, ...options });
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
    // Connections through the test's proxy are gone with it.
    await Promise.all([admin, ...connections].map(async (connection) => (connection.status === "ready" ? void (await connection.quit()) : connection.disconnect())));
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
    expect(await coordinatorA.version("user:v")).toBeGreaterThan(first ?? Number.POSITIVE_INFINITY);
    expect(await coordinatorA.version("user:other")).toBe(0);
  });

  it("never hands back an old version after Redis lost the key", async () => {
    const coordinator = await newInstance("lost");
    await coordinator.bump("user:lost");
    const before = await coordinator.version("user:lost");
    await admin.del(versionKey("user:lost"));
    await coordinator.bump("user:lost");
    expect(await coordinator.version("user:lost")).toBeGreaterThanOrEqual(before ?? Number.POSITIVE_INFINITY);
    expect(await coordinator.version("user:lost")).not.toBe(before);
  });

  it("keeps the version key with a long expiry, refreshed on every bump", async () => {
    const coordinator = await newInstance("ttl");
    await coordinator.bump("user:ttl");
    await admin.expire(versionKey("user:ttl"), 10);
    await coordinator.bump("user:ttl");
    const ttl = await admin.ttl(versionKey("user:ttl"));
    expect(ttl).toBeGreaterThan(6 * 86_400);
    expect(ttl).toBeLessThanOrEqual(7 * 86_400);
  });

  it("delivers invalidations from every instance (itself included) and ignores other channels", async () => {
    const coordinatorA = await newInstance("messages-a");
    const coordinatorB = await newInstance("messages-b");
    const seen: string[] = [];
    coordinatorB.onInvalidate((owner) => seen.push(owner));
    await admin.publish(`${prefix}other-channel`, "user:elsewhere");
    await admin.publish(`keyport:key-changes`, "user:default-prefix");
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
    // Closed: it trusts nothing any more, but the connections it was given still work.
    expect(await coordinatorB.version("user:after-close")).toBeUndefined();
    expect(connections.every((connection) => connection.status === "ready")).toBe(true);
  });

  it("while a change is in progress no instance may cache the owner; ending it moves the version past every earlier one", async () => {
    const coordinatorA = await newInstance("change-a");
    const coordinatorB = await newInstance("change-b");
    await coordinatorA.bump("user:c");
    const before = await coordinatorB.version("user:c");
    const ticket = await coordinatorA.beginChange("user:c");
    expect(await coordinatorB.version("user:c")).toBeUndefined();
    expect(await coordinatorA.version("user:c")).toBeUndefined();
    expect(await coordinatorB.version("user:other")).toBe(0);
    await coordinatorA.endChange(ticket);
    const after = await coordinatorB.version("user:c");
    expect(after).toBeGreaterThan(before ?? Number.POSITIVE_INFINITY);
    // Settled again: the long expiry is back.
    expect(await admin.ttl(versionKey("user:c"))).toBeGreaterThan(6 * 86_400);
  });

  it("overlapping changes keep the owner uncached until the last one ends; ending one twice is harmless", async () => {
    const coordinatorA = await newInstance("overlap-a");
    const coordinatorB = await newInstance("overlap-b");
    const first = await coordinatorA.beginChange("user:o");
    const second = await coordinatorB.beginChange("user:o");
    await coordinatorA.endChange(first);
    await coordinatorA.endChange(first);
    expect(await coordinatorA.version("user:o")).toBeUndefined();
    await coordinatorB.bump("user:o");
    expect(await coordinatorA.version("user:o")).toBeUndefined();
    await coordinatorB.endChange(second);
    expect(await coordinatorA.version("user:o")).toEqual(expect.any(Number));
  });

  it("lets the owner be cached again once the lease of a change that never ended runs out", async () => {
    const coordinator = await newInstance("lease", { changeLeaseMs: 1_000 });
    await coordinator.beginChange("user:abandoned");
    expect(await coordinator.version("user:abandoned")).toBeUndefined();
    const ttl = await admin.pttl(versionKey("user:abandoned"));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1_000);
    await vi.waitFor(async () => expect(await coordinator.version("user:abandoned")).toEqual(expect.any(Number)), { timeout: 5_000, interval: 50 });
  });

  it("two instances: what B loads while A's change runs is not kept, and B reloads after it", async () => {
    const instanceA = createKeyCache<string>({ coordinator: await newInstance("race-a") });
    const instanceB = createKeyCache<string>({ coordinator: await newInstance("race-b") });
    let stored = "old";
    const load = vi.fn(async () => stored);
    expect(await instanceB.get("user:r", "openai", load)).toBe("old");
    await instanceA.change("user:r", async () => {
      // Not committed yet: B may read the old record, but must not keep it.
      expect(await instanceB.get("user:r", "openai", load)).toBe("old");
      expect(instanceB.size()).toBe(0);
      stored = "new";
    });
    expect(await instanceB.get("user:r", "openai", load)).toBe("new");
    expect(await instanceB.get("user:r", "openai", load)).toBe("new");
    expect(load).toHaveBeenCalledTimes(3);
  });

  describe("through a link the test can break", () => {
    let proxy: TcpProxy;
    beforeAll(async () => {
      proxy = await startTcpProxy(new URL(url).host);
    });
    afterEach(() => {
      proxy.restore();
      proxy.resume();
    });
    afterAll(async () => {
      await proxy.close();
    });

    it("stops trusting its cache the moment the subscription is lost, and resynchronises when it is back", async () => {
      const changes: boolean[] = [];
      const coordinator = await newInstance("cut", { onListeningChange: (isListening) => changes.push(isListening) }, proxy.urlFor(url));
      const cache = createKeyCache<string>({ coordinator });
      let dropAll = 0;
      coordinator.onInvalidateAll(() => (dropAll += 1));
      await cache.get("user:cut", "openai", async () => "before the outage");
      expect(cache.size()).toBe(1);

      proxy.cut();
      await vi.waitFor(() => expect(coordinator.isListening()).toBe(false), { timeout: 2_000, interval: 10 });
      expect(cache.size()).toBe(0);
      expect(await coordinator.version("user:cut")).toBeUndefined();
      const load = vi.fn(async () => "from the database");
      expect(await cache.get("user:cut", "openai", load)).toBe("from the database");
      expect(await cache.get("user:cut", "openai", load)).toBe("from the database");
      expect(load).toHaveBeenCalledTimes(2);
      expect(cache.size()).toBe(0);

      proxy.restore();
      await coordinator.ready(10_000);
      expect(changes).toEqual([true, false, true]);
      expect(dropAll).toBe(2);
      // The command connection reconnects on its own schedule; until it does nothing is cached either.
      await vi.waitFor(async () => expect(await coordinator.version("user:cut")).toEqual(expect.any(Number)), { timeout: 10_000, interval: 50 });
      expect(await cache.get("user:cut", "openai", load)).toBe("from the database");
      expect(await cache.get("user:cut", "openai", load)).toBe("from the database");
      expect(load).toHaveBeenCalledTimes(3);
    });

    it("notices a stalled subscription by its heartbeat, without any event from the connection", async () => {
      const coordinator = await newInstance("pause", { heartbeatMs: 50 }, proxy.urlFor(url));
      expect(coordinator.isListening()).toBe(true);
      proxy.pause();
      // The PING times out after the connection's command timeout (2 s).
      await vi.waitFor(() => expect(coordinator.isListening()).toBe(false), { timeout: 5_000, interval: 20 });
      expect(await coordinator.version("user:paused")).toBeUndefined();
      proxy.resume();
      await coordinator.ready(15_000);
      expect(coordinator.isListening()).toBe(true);
    });
  });

  it("rejects with an unavailable AppError at once when Redis cannot be reached", async () => {
    const down = connectRedis("redis://127.0.0.1:1", { name: "keyport-test-down" });
    const downSubscriber = connectRedis("redis://127.0.0.1:1", { name: "keyport-test-down-sub" });
    try {
      const coordinator = createRedisCacheCoordinator({ redis: down, subscriber: downSubscriber, prefix });
      // Never subscribed: nothing may be cached, and Redis is not even asked.
      expect(coordinator.isListening()).toBe(false);
      expect(await coordinator.version("user:a")).toBeUndefined();
      await expect(coordinator.beginChange("user:a")).rejects.toMatchObject({ code: "unavailable", internal: { backend: "redis" } });
      await expect(coordinator.bump("user:a")).rejects.toMatchObject({ code: "unavailable" });
      await expect(coordinator.ready(50)).rejects.toMatchObject({ code: "unavailable" });
      // A cache on top keeps serving from the database, caching nothing, and refuses changes.
      const cache = createKeyCache<string>({ maxEntries: 10, ttlMs: 1_000, coordinator });
      expect(await cache.get("user:a", "openai", async () => "from-database")).toBe("from-database");
      expect(cache.size()).toBe(0);
      const write = vi.fn(async () => "written");
      await expect(cache.change("user:a", write)).rejects.toMatchObject({ code: "unavailable", headers: { "retry-after": "5" } });
      expect(write).not.toHaveBeenCalled();
      await expect(cache.invalidate("user:a")).rejects.toMatchObject({ code: "unavailable" });
      await coordinator.close();
    } finally {
      down.disconnect();
      downSubscriber.disconnect();
    }
  });
});
