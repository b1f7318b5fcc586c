import type { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { deleteTestKeys, describeRedis, openTestRedis, uniqueTestPrefix } from "../../test/support/redis.js";
import type { Tier } from "../config/tiers.js";
import { connectRedis } from "../redis/connect-redis.js";
import { createRedisTierLimiter } from "./redis-tier-limiter.js";
import { inOneWindow, runTierLimiterContract } from "./tier-limiter.contract.js";

const tier = (requestsPerMinute: number, requestsPerDay: number): Tier => ({ requestsPerMinute, requestsPerDay, byokAllowed: false });

await describeRedis("redis tier limiter", (url) => {
  const prefix = uniqueTestPrefix("rl");
  let first: Redis;
  let second: Redis;
  beforeAll(async () => {
    first = await openTestRedis(url, "keyport-test-rl-1");
    second = await openTestRedis(url, "keyport-test-rl-2");
  });
  afterAll(async () => {
    await deleteTestKeys(first, prefix);
    await Promise.all([first.quit(), second.quit()]);
  });

  runTierLimiterContract("redis", async () => createRedisTierLimiter({ redis: first, keyPrefix: prefix }));

  it("shares one limit between two instances: 10 allowed in total, not 20", async () => {
    const instanceA = createRedisTierLimiter({ redis: first, keyPrefix: prefix });
    const instanceB = createRedisTierLimiter({ redis: second, keyPrefix: prefix });
    let owner = "";
    const results = await inOneWindow((freshOwner) => {
      owner = freshOwner;
      return Promise.all(Array.from({ length: 20 }, (_, index) => (index % 2 === 0 ? instanceA : instanceB).check(owner, tier(10, 100))));
    });
    expect(results.filter((result) => result.allowed)).toHaveLength(10);
    // Refused calls were taken back: the day counted only the allowed ones.
    expect(await first.get(`${prefix}{${owner}}:day`)).toBe("10");
  });

  it("keeps its counters under the key prefix, each expiring exactly when its window ends", async () => {
    const limiter = createRedisTierLimiter({ redis: first, keyPrefix: prefix });
    const expiries = async (owner: string) => [
      Number(await first.call("PEXPIRETIME", `${prefix}{${owner}}:minute`)),
      Number(await first.call("PEXPIRETIME", `${prefix}{${owner}}:day`)),
    ];
    let minuteEnd = -2;
    let dayEnd = -2;
    // A key checked in the last instant of a window is gone again (-2) when asked; then once more.
    for (let attempt = 0; attempt < 3 && (minuteEnd < 0 || dayEnd < 0); attempt += 1) {
      const owner = `user:expiry-${attempt}`;
      await limiter.check(owner, tier(10, 100));
      [minuteEnd = -2, dayEnd = -2] = await expiries(owner);
    }
    expect(minuteEnd % 60_000).toBe(0);
    expect(dayEnd % 86_400_000).toBe(0);
    const [serverSeconds] = await first.time();
    expect(minuteEnd).toBeGreaterThan(Number(serverSeconds) * 1000 - 60_000);
    expect(minuteEnd).toBeLessThanOrEqual(Number(serverSeconds) * 1000 + 60_000);
    expect(dayEnd).toBeLessThanOrEqual(Number(serverSeconds) * 1000 + 86_400_000);
  });

  it("makes one round trip per check", async () => {
    const connection = await openTestRedis(url, "keyport-test-rl-trips");
    const limiter = createRedisTierLimiter({ redis: connection, keyPrefix: prefix });
    const owner = `user:round-trips-${Date.now()}`;
    const sent = vi.spyOn(connection, "sendCommand");
    /** Names of the commands this client sent since the last call. */
    const trips = () => {
      const names = sent.mock.calls.map(([command]) => command.name);
      sent.mockClear();
      return names;
    };
    try {
      // The first use on a connection sends the script itself (EVAL), later ones its hash.
      await limiter.check(owner, tier(10, 100));
      expect(trips()).toEqual(["eval"]);
      await limiter.check(owner, tier(10, 100));
      expect(trips()).toEqual(["evalsha"]);
      expect(await limiter.check(owner, tier(10, 100))).toMatchObject({ allowed: true, remaining: 7 });
      expect(trips()).toEqual(["evalsha"]);
      // (After a Redis restart EVALSHA answers NOSCRIPT and ioredis resends it as EVAL. Not
      // exercised here: SCRIPT FLUSH would pull the scripts from under every other client of
      // this shared server.)
    } finally {
      sent.mockRestore();
      await connection.quit();
    }
  });

  it("rejects with an unavailable AppError at once when Redis cannot be reached", async () => {
    const down = connectRedis("redis://127.0.0.1:1", { name: "keyport-test-down" });
    try {
      const limiter = createRedisTierLimiter({ redis: down, keyPrefix: prefix });
      const failure = await limiter.check("user:a", tier(10, 100)).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure).toMatchObject({ code: "unavailable", publicMessage: "Rate limiting is temporarily unavailable" });
      expect(failure).toMatchObject({ internal: { backend: "redis" } });
    } finally {
      down.disconnect();
    }
  });
});
