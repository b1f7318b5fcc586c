import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { describePostgres } from "../support/postgres.js";
import { describeRedis } from "../support/redis.js";
import { anthropicThrough, openAiThrough } from "../gateway/gateway-clients.js";
import {
  chat,
  degradationsOf,
  type FaultyDeployment,
  type FaultyInstance,
  readiness,
  startFaultyDeployment,
  storeOpenAiKey,
  waitForReadiness,
} from "./fault-support.js";

/** The error a promise rejects with (or `undefined` when it resolves). */
function failureOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

/**
 * `/readyz` fails only when an instance cannot serve, and runtime outages of PostgreSQL or Redis
 * are answered 503 `unavailable` with `retry-after`, never 500. Faults are injected on one
 * instance's links (TCP proxies); the other instance shows that the deployment is unaffected.
 */
await describeRedis("readiness and runtime outages", async (redisUrl) => {
  await describePostgres("two instances", (postgresUrl) => {
    let deployment: FaultyDeployment;
    let instanceA: FaultyInstance;
    let instanceB: FaultyInstance;

    beforeAll(async () => {
      deployment = await startFaultyDeployment({ postgresUrl, redisUrl, names: ["A", "B"] });
      [instanceA, instanceB] = deployment.instances as [FaultyInstance, FaultyInstance];
    });
    afterEach(async () => {
      for (const instance of deployment.instances) {
        instance.redisLink.restore();
        instance.postgresLink.restore();
      }
      for (const instance of deployment.instances) {
        await waitForReadiness(instance, (response) => expect(response.body.status).toBe("ready"));
      }
    });
    afterAll(async () => {
      await deployment?.close();
    });

    it("is ready with nothing degraded while both dependencies answer", async () => {
      const response = await readiness(instanceA);
      expect(response.status).toBe(200);
      expect(response.body).toEqual({ status: "ready", ready: true, checks: { database: "ok", redis: "ok" }, degraded: [], pendingAnnouncements: 0 });
    });

    it("stays ready, degraded, and keeps serving when Redis is unreachable with the open policy", async () => {
      const communityToken = await instanceA.token("redis-open-community", { tier: "community" });
      const premiumToken = await instanceA.token("redis-open-premium", { tier: "premium" });
      await storeOpenAiKey(instanceA, premiumToken, deployment.mock);

      instanceA.redisLink.cut();
      const response = await waitForReadiness(instanceA, (answer) => expect(answer.body.checks.redis).toBe("unreachable"));
      expect(response.status, response.text).toBe(200);
      expect(response.body).toMatchObject({ status: "degraded", ready: true, checks: { database: "ok", redis: "unreachable" } });
      expect(degradationsOf(response).sort()).toEqual(["key_cache_bypassed", "key_changes_refused", "rate_limits_not_enforced", "redis_unreachable"]);
      for (const item of response.body.degraded as { since: string; message: string }[]) {
        expect(Number.isNaN(Date.parse(item.since))).toBe(false);
        expect(item.message).not.toBe("");
      }
      // It serves: the platform key without its rate limit, the owner's own key from the database.
      for (let call = 0; call < 3; call += 1) expect(await chat(instanceA, communityToken)).toBe("platform");
      expect(await chat(instanceA, premiumToken)).toBe("byok");
      // The other instance is untouched.
      expect((await readiness(instanceB)).body.status).toBe("ready");

      instanceA.redisLink.restore();
      await waitForReadiness(instanceA, (answer) => expect(answer.body.status).toBe("ready"));
    });

    it("is not ready when Redis is unreachable and the policy is closed", async () => {
      const closed = await deployment.addInstance("C", { KEYPORT_RATE_LIMIT_ON_ERROR: "closed" });
      const token = await closed.token("redis-closed", { tier: "community" });
      closed.redisLink.cut();
      const response = await waitForReadiness(closed, (answer) => expect(answer.status).toBe(503));
      expect(response.body).toMatchObject({ status: "not_ready", ready: false });
      expect(degradationsOf(response)).toContain("platform_calls_refused");
      expect((response.body.notReadyBecause as string[]).join(" ")).toContain("KEYPORT_RATE_LIMIT_ON_ERROR=closed");
      const error = await failureOf(openAiThrough(closed.url, token).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }));
      expect(error).toBeInstanceOf(OpenAI.APIError);
      expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
      closed.redisLink.restore();
      await waitForReadiness(closed, (answer) => expect(answer.status).toBe(200));
    });

    it("with PostgreSQL unreachable serves cached owners, answers the others and the API 503 unavailable with retry-after, and stays ready", async () => {
      const cachedToken = await instanceA.token("pg-cached", { tier: "premium" });
      const uncachedToken = await instanceA.token("pg-uncached", { tier: "premium" });
      const { id } = await storeOpenAiKey(instanceA, cachedToken, deployment.mock);
      expect(await chat(instanceA, cachedToken)).toBe("byok");

      instanceA.postgresLink.cut();
      const response = await waitForReadiness(instanceA, (answer) => expect(answer.body.checks.database).toBe("unreachable"));
      expect(response.status, response.text).toBe(200);
      expect(response.body).toMatchObject({ status: "degraded", ready: true });
      expect(degradationsOf(response)).toEqual(["database_unreachable"]);

      // A cached owner is served without the database.
      expect(await chat(instanceA, cachedToken)).toBe("byok");

      // An owner not cached: the provider-shaped 503, on both providers' routes.
      const openAiError = await failureOf(
        openAiThrough(instanceA.url, uncachedToken).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }),
      );
      expect(openAiError).toBeInstanceOf(OpenAI.InternalServerError);
      const openAi = openAiError as InstanceType<typeof OpenAI.APIError>;
      expect(openAi.status).toBe(503);
      expect(openAi.error).toMatchObject({ type: "server_error", code: "unavailable" });
      expect(Number(openAi.headers?.get("retry-after"))).toBeGreaterThan(0);
      const anthropicError = await failureOf(
        anthropicThrough(instanceA.url, uncachedToken).messages.create({ model: "claude-haiku-4-5", max_tokens: 16, messages: [{ role: "user", content: "hi" }] }),
      );
      expect(anthropicError).toBeInstanceOf(Anthropic.InternalServerError);
      const anthropic = anthropicError as InstanceType<typeof Anthropic.APIError>;
      expect(anthropic.status).toBe(503);
      expect(Number(anthropic.headers?.get("retry-after"))).toBeGreaterThan(0);

      // The management API: 503 unavailable with retry-after, for reads and writes alike.
      for (const [method, route, body] of [
        ["GET", "/api/v1/api-keys", undefined],
        ["GET", `/api/v1/api-keys/${id}`, undefined],
        ["PATCH", `/api/v1/api-keys/${id}`, { label: "renamed" }],
        ["GET", "/api/v1/usage", undefined],
      ] as const) {
        const answer = await instanceA.request(method, route, { token: cachedToken, body });
        expect(answer.status, `${method} ${route}: ${answer.text}`).toBe(503);
        expect(answer.body.error).toMatchObject({ type: "api_error", code: "unavailable" });
        expect(Number(answer.headers.get("retry-after"))).toBeGreaterThan(0);
      }
      // The other instance still has the database.
      expect((await instanceB.request("GET", `/api/v1/api-keys/${id}`, { token: cachedToken })).status).toBe(200);

      // Without Redis as well, the cache cannot serve: not ready.
      instanceA.redisLink.cut();
      const neither = await waitForReadiness(instanceA, (answer) => expect(answer.status).toBe(503));
      expect(neither.body.status).toBe("not_ready");

      instanceA.redisLink.restore();
      instanceA.postgresLink.restore();
      await waitForReadiness(instanceA, (answer) => expect(answer.body.status).toBe("ready"));
      expect((await instanceA.request("GET", `/api/v1/api-keys/${id}`, { token: cachedToken })).status).toBe(200);
      expect(await chat(instanceA, uncachedToken)).toBe("platform");
    });
  });
});
