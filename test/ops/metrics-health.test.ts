import { afterAll, beforeAll, expect, it } from "vitest";
import { describePostgres } from "../support/postgres.js";
import { describeRedis } from "../support/redis.js";
import { type FaultyDeployment, type FaultyInstance, startFaultyDeployment, waitForReadiness } from "../faults/fault-support.js";
import { parseExposition, type Sample, valueOf } from "./metrics-support.js";

async function metricsOf(instance: FaultyInstance): Promise<Sample[]> {
  const response = await instance.request("GET", "/metrics");
  expect(response.status, response.text).toBe(200);
  return parseExposition(response.text);
}

/** The degradations the metrics show as 1. */
function degraded(samples: readonly Sample[]): string[] {
  return samples
    .filter((sample) => sample.name === "keyport_degraded" && sample.value === 1)
    .map((sample) => sample.labels.name ?? "")
    .sort();
}

/**
 * The metrics follow what `/readyz` says: each dependency's state, the degraded flags and
 * readiness, with Redis and then PostgreSQL cut off behind a TCP proxy.
 */
await describeRedis("metrics of dependency health", async (redisUrl) => {
  await describePostgres("one instance on PostgreSQL and Redis", (postgresUrl) => {
    let deployment: FaultyDeployment;
    let instance: FaultyInstance;

    beforeAll(async () => {
      deployment = await startFaultyDeployment({ postgresUrl, redisUrl, names: ["A"], env: { KEYPORT_METRICS_AUTH: "none" } });
      instance = deployment.instances[0] as FaultyInstance;
    });
    afterAll(async () => {
      await deployment?.close();
    });

    it("shows both dependencies up, nothing degraded, ready", async () => {
      const samples = await metricsOf(instance);
      expect(valueOf(samples, "keyport_dependency_up", { dependency: "database" })).toBe(1);
      expect(valueOf(samples, "keyport_dependency_up", { dependency: "redis" })).toBe(1);
      expect(degraded(samples)).toEqual([]);
      expect(valueOf(samples, "keyport_ready")).toBe(1);
    });

    it("Redis cut off: redis down, its degradations flagged, still ready (open policy); back when it returns", async () => {
      instance.redisLink.cut();
      await waitForReadiness(instance, (answer) => expect(answer.body.checks.redis).toBe("unreachable"));
      const samples = await metricsOf(instance);
      expect(valueOf(samples, "keyport_dependency_up", { dependency: "redis" })).toBe(0);
      expect(valueOf(samples, "keyport_dependency_up", { dependency: "database" })).toBe(1);
      expect(degraded(samples)).toEqual(["key_cache_bypassed", "key_changes_refused", "rate_limits_not_enforced", "redis_unreachable"]);
      expect(valueOf(samples, "keyport_ready")).toBe(1);

      instance.redisLink.restore();
      await waitForReadiness(instance, (answer) => expect(answer.body.status).toBe("ready"));
      const healed = await metricsOf(instance);
      expect(valueOf(healed, "keyport_dependency_up", { dependency: "redis" })).toBe(1);
      expect(degraded(healed)).toEqual([]);
    });

    it("PostgreSQL cut off: database down and flagged", async () => {
      instance.postgresLink.cut();
      try {
        await waitForReadiness(instance, (answer) => expect(answer.body.checks.database).toBe("unreachable"));
        const samples = await metricsOf(instance);
        expect(valueOf(samples, "keyport_dependency_up", { dependency: "database" })).toBe(0);
        expect(degraded(samples)).toContain("database_unreachable");
      } finally {
        instance.postgresLink.restore();
      }
      await waitForReadiness(instance, (answer) => expect(answer.body.status).toBe("ready"));
      expect(valueOf(await metricsOf(instance), "keyport_dependency_up", { dependency: "database" })).toBe(1);
    });
  });
});
