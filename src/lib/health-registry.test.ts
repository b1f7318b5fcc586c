import { describe, expect, it } from "vitest";
import type { Clock } from "./clock.js";
import { createDependencyProbe, createHealthRegistry, DEGRADATION_NAMES, type HealthRegistryOptions } from "./health-registry.js";

function manualClock(startMs = Date.parse("2026-01-01T00:00:00.000Z")): Clock & { advance(milliseconds: number): void } {
  let nowMs = startMs;
  return {
    now: () => new Date(nowMs),
    advance: (milliseconds) => {
      nowMs += milliseconds;
    },
  };
}

function registry(options: Partial<HealthRegistryOptions> = {}) {
  const clock = manualClock();
  return { clock, health: createHealthRegistry({ usesRedis: true, rateLimitOnError: "open", clock, ...options }) };
}

describe("health registry", () => {
  it("starts ready with nothing degraded; Redis is not_configured without REDIS_URL", () => {
    expect(registry().health.snapshot()).toMatchObject({ ready: true, status: "ready", degraded: [], notReadyBecause: [] });
    const single = registry({ usesRedis: false }).health;
    single.setDependency("redis", false);
    single.setKeyCacheListening(false);
    expect(single.snapshot()).toMatchObject({ ready: true, status: "ready", dependencies: { redis: { status: "not_configured" } } });
  });

  it.each([
    ["Redis down, open policy", { redis: false }, "open", true, ["redis_unreachable", "key_changes_refused", "rate_limits_not_enforced", "key_cache_bypassed"]],
    ["Redis down, closed policy", { redis: false }, "closed", false, ["redis_unreachable", "key_changes_refused", "platform_calls_refused", "key_cache_bypassed"]],
    ["database down, Redis up", { database: false }, "open", true, ["database_unreachable"]],
    ["database down, invalidations lost", { database: false, listening: false }, "open", false, ["database_unreachable", "key_cache_bypassed"]],
    ["database and Redis down", { database: false, redis: false }, "open", false, ["database_unreachable", "redis_unreachable", "key_changes_refused", "rate_limits_not_enforced", "key_cache_bypassed"]],
    ["invalidations lost only", { listening: false }, "open", true, ["key_cache_bypassed"]],
  ] as const)("%s: ready %s with the listed degradations", (_name, state, policy, ready, degraded) => {
    const { health } = registry({ rateLimitOnError: policy });
    if ("database" in state) health.setDependency("database", state.database);
    if ("redis" in state) health.setDependency("redis", state.redis);
    if ("listening" in state) health.setKeyCacheListening(state.listening);
    const snapshot = health.snapshot();
    expect(snapshot.ready).toBe(ready);
    expect(snapshot.status).toBe(ready ? "degraded" : "not_ready");
    expect(snapshot.degraded.map((item) => item.name).sort()).toEqual([...degraded].sort());
    expect(snapshot.notReadyBecause.length === 0).toBe(ready);
  });

  it("shows pending announcements as a degradation while there are any", () => {
    const { health } = registry();
    health.setPendingAnnouncements(2);
    expect(health.snapshot()).toMatchObject({ ready: true, status: "degraded", pendingAnnouncements: 2, degraded: [{ name: "invalidations_pending" }] });
    health.setPendingAnnouncements(0);
    expect(health.snapshot()).toMatchObject({ status: "ready", pendingAnnouncements: 0, degraded: [] });
  });

  it("keeps when each degradation began, and forgets it when it ends", () => {
    const { clock, health } = registry();
    health.setDependency("database", false);
    const began = clock.now().toISOString();
    clock.advance(5_000);
    health.setDependency("redis", false);
    const later = clock.now().toISOString();
    clock.advance(5_000);
    const snapshot = health.snapshot();
    expect(snapshot.degraded.find((item) => item.name === "database_unreachable")?.since).toBe(began);
    expect(snapshot.degraded.find((item) => item.name === "redis_unreachable")?.since).toBe(later);
    expect(snapshot.dependencies.database).toEqual({ status: "unreachable", since: began });
    health.setDependency("database", true);
    expect(health.snapshot().degraded.map((item) => item.name)).not.toContain("database_unreachable");
  });

  it("is not ready once stopping", () => {
    const { health } = registry();
    health.setStopping();
    expect(health.snapshot()).toMatchObject({ ready: false, status: "not_ready", notReadyBecause: ["shutting down"] });
  });

  it("tells listeners about every change of state, and not about repeats", () => {
    const { health } = registry();
    const seen: string[] = [];
    const stop = health.onChange((snapshot) => seen.push(snapshot.status));
    health.setDependency("redis", false);
    health.setDependency("redis", false);
    health.setDependency("redis", true);
    stop();
    health.setDependency("redis", false);
    expect(seen).toEqual(["degraded", "ready"]);
  });

  it("describes every degradation it can report", () => {
    expect(DEGRADATION_NAMES).toEqual(
      expect.arrayContaining(["database_unreachable", "redis_unreachable", "rate_limits_not_enforced", "platform_calls_refused", "key_cache_bypassed", "key_changes_refused", "invalidations_pending"]),
    );
  });
});

describe("dependency probe", () => {
  it("records each answer, and a check that does not answer in time as unreachable", async () => {
    const { health } = registry();
    const failures: string[] = [];
    const probe = createDependencyProbe({
      registry: health,
      timeoutMs: 50,
      checks: { database: () => new Promise(() => {}), redis: async () => "PONG" },
      onFailure: (dependency) => failures.push(dependency),
    });
    await probe();
    expect(health.snapshot().dependencies).toMatchObject({ database: { status: "unreachable" }, redis: { status: "ok" } });
    expect(failures).toEqual(["database"]);
  });

  it("shares one round of checks among concurrent callers", async () => {
    const { health } = registry();
    let calls = 0;
    const probe = createDependencyProbe({ registry: health, checks: { database: async () => (calls += 1) } });
    await Promise.all([probe(), probe(), probe()]);
    expect(calls).toBe(1);
    await probe();
    expect(calls).toBe(2);
  });
});
