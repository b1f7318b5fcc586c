import pg from "pg";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { describePostgres } from "../support/postgres.js";
import { describeRedis } from "../support/redis.js";
import {
  auditTypesOf,
  chat,
  degradationsOf,
  type FaultyDeployment,
  type FaultyInstance,
  keysSeenSince,
  startFaultyDeployment,
  storeOpenAiKey,
  waitForReadiness,
} from "./fault-support.js";

/**
 * A key change made through one instance must either reach every instance or not happen, with
 * Redis faults injected on one instance's link (a TCP proxy the test cuts), never by stopping
 * the shared Redis. Two instances, A and B, on one PostgreSQL schema and one Redis prefix.
 */
await describeRedis("key changes under Redis faults", async (redisUrl) => {
  await describePostgres("two instances", (postgresUrl) => {
    let deployment: FaultyDeployment;
    let instanceA: FaultyInstance;
    let instanceB: FaultyInstance;

    beforeAll(async () => {
      deployment = await startFaultyDeployment({ postgresUrl, redisUrl, names: ["A", "B"] });
      [instanceA, instanceB] = deployment.instances as [FaultyInstance, FaultyInstance];
    });
    afterAll(async () => {
      await deployment?.close();
    });

    /** Waits until the instance's link to Redis is back and its invalidation feed live again. */
    async function healed(instance: FaultyInstance): Promise<void> {
      await waitForReadiness(instance, (response) => expect(degradationsOf(response)).toEqual([]));
    }

    it("refuses a delete through an instance that cannot reach Redis, changing nothing; once Redis is back the delete holds everywhere at once", async () => {
      const owner = "user:refused-delete";
      const token = await instanceA.token("refused-delete", { tier: "premium" });
      const { id, apiKey } = await storeOpenAiKey(instanceA, token, deployment.mock);
      expect(await chat(instanceB, token)).toBe("byok");

      instanceA.redisLink.cut();
      await waitForReadiness(instanceA, (response) => expect(degradationsOf(response)).toContain("key_changes_refused"));
      const refused = await instanceA.request("DELETE", `/api/v1/api-keys/${id}`, { token });
      expect(refused.status, refused.text).toBe(503);
      expect(refused.body.error).toMatchObject({ type: "api_error", code: "unavailable" });
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
      // Nothing happened: the key is there, no event, and B rightly keeps using it.
      expect((await instanceB.request("GET", `/api/v1/api-keys/${id}`, { token })).status).toBe(200);
      expect(await auditTypesOf(postgresUrl, deployment.schema, owner)).not.toContain("key.deleted");
      expect(await chat(instanceB, token)).toBe("byok");

      instanceA.redisLink.restore();
      await healed(instanceA);
      const deleted = await instanceA.request("DELETE", `/api/v1/api-keys/${id}`, { token });
      expect(deleted.status, deleted.text).toBe(204);
      const mark = deployment.mock.requests().length;
      expect(await chat(instanceB, token)).toBe("platform");
      expect(await chat(instanceA, token)).toBe("platform");
      expect(keysSeenSince(deployment.mock, mark)).not.toContain(apiKey);
      expect((await auditTypesOf(postgresUrl, deployment.schema, owner)).filter((type) => type === "key.deleted")).toHaveLength(1);
    });

    it("acknowledges a delete that committed while the instance lost Redis, and no instance uses the key from the acknowledgement on", async () => {
      const owner = "user:committed-delete";
      const token = await instanceA.token("committed-delete", { tier: "premium" });
      const { id, apiKey } = await storeOpenAiKey(instanceA, token, deployment.mock);
      expect(await chat(instanceB, token)).toBe("byok");
      expect(await chat(instanceB, token)).toBe("byok");

      // Hold the row, so the delete is announced and then waits for its commit.
      const blocker = new pg.Client({ connectionString: postgresUrl });
      await blocker.connect();
      try {
        await blocker.query("begin");
        await blocker.query(`select id from "${deployment.schema}".provider_keys where id = $1 for update`, [id]);
        const deleting = instanceA.request("DELETE", `/api/v1/api-keys/${id}`, { token });
        const versionKey = `${deployment.redisPrefix}keyver:${owner}`;
        await vi.waitFor(async () => expect(await deployment.redis.get(versionKey)).toContain("|"), { timeout: 10_000, interval: 20 });
        // Not committed yet: B may still use the key, but must not keep the record it reads now.
        expect(await chat(instanceB, token)).toBe("byok");
        // Now A loses Redis before it can end the change.
        instanceA.redisLink.cut();
        await blocker.query("rollback");
        const deleted = await deleting;
        expect(deleted.status, deleted.text).toBe(204);
      } finally {
        await blocker.end();
      }

      const mark = deployment.mock.requests().length;
      for (let call = 0; call < 3; call += 1) expect(await chat(instanceB, token)).toBe("platform");
      expect(keysSeenSince(deployment.mock, mark)).not.toContain(apiKey);
      expect(await auditTypesOf(postgresUrl, deployment.schema, owner)).toContain("key.deleted");
      await waitForReadiness(instanceA, (response) => {
        expect(response.status).toBe(200);
        expect(degradationsOf(response)).toEqual(expect.arrayContaining(["redis_unreachable", "invalidations_pending"]));
        expect(response.body.pendingAnnouncements).toBe(1);
      });

      // The end of the change is retried until Redis takes it; then the owner is settled again.
      instanceA.redisLink.restore();
      await healed(instanceA);
      expect(await deployment.redis.get(`${deployment.redisPrefix}keyver:${owner}`)).toMatch(/^\d+$/);
      expect(await chat(instanceB, token)).toBe("platform");
      expect(keysSeenSince(deployment.mock, mark)).not.toContain(apiKey);
    });

    it("after a Redis outage seen by every instance, serves nothing it cached before the outage", async () => {
      const token = await instanceA.token("outage", { tier: "premium" });
      const { apiKey } = await storeOpenAiKey(instanceA, token, deployment.mock);
      for (const instance of [instanceA, instanceB]) expect(await chat(instance, token)).toBe("byok");

      instanceA.redisLink.cut();
      instanceB.redisLink.cut();
      for (const instance of [instanceA, instanceB]) {
        await waitForReadiness(instance, (response) => expect(degradationsOf(response)).toContain("key_cache_bypassed"));
      }
      // The provider revokes the key; A learns it on a call and marks it (a change it may not
      // refuse), but cannot announce it while Redis is out of reach.
      deployment.mock.setKey(apiKey, "invalid");
      expect(await chat(instanceA, token)).toBe("platform");

      // B gets Redis back first: the version it sees has not moved, yet it must not serve the
      // key record it cached before the outage.
      instanceB.redisLink.restore();
      await healed(instanceB);
      const mark = deployment.mock.requests().length;
      expect(await chat(instanceB, token)).toBe("platform");
      expect(keysSeenSince(deployment.mock, mark)).toEqual([deployment.platformOpenAiKey]);

      instanceA.redisLink.restore();
      await healed(instanceA);
      expect(await chat(instanceB, token)).toBe("platform");
      expect(keysSeenSince(deployment.mock, mark)).not.toContain(apiKey);
    });
  });
});
