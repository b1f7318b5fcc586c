import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { startMockProvider } from "../../src/mock-provider/mock-provider.js";
import type { MockProvider } from "../../src/mock-provider/types.js";
import { openAiThrough } from "../gateway/gateway-clients.js";
import { startKeyport, type TestKeyport } from "../support/harness.js";
import { openAiKey } from "../support/keys.js";
import { describePostgres } from "../support/postgres.js";
import { deleteTestKeys, describeRedis, openTestRedis, uniqueTestPrefix } from "../support/redis.js";
import { chat, storeOpenAiKey } from "./fault-support.js";

/**
 * Two deployments share one Redis server, each with its own KEYPORT_REDIS_PREFIX (and its own
 * database): the key changes of one never reach the other's caches, and their rate-limit
 * counters stay apart, even for an owner of the same name.
 */
await describeRedis("two deployments on one Redis", async (redisUrl) => {
  await describePostgres("different KEYPORT_REDIS_PREFIX", () => {
    const prefixX = uniqueTestPrefix("deploy-x");
    const prefixY = uniqueTestPrefix("deploy-y");
    const platformOpenAiKey = openAiKey();
    let mock: MockProvider;
    let admin: Redis;
    let listener: Redis;
    let deploymentX: TestKeyport;
    let deploymentY: TestKeyport;
    const messages: { channel: string; owner: string }[] = [];
    // Owner names no other test (or parallel run with the default prefix) uses.
    const sameName = `same-name-${randomBytes(4).toString("hex")}`;
    const limitedName = `limited-${randomBytes(4).toString("hex")}`;

    beforeAll(async () => {
      mock = await startMockProvider({ keys: { [platformOpenAiKey]: "valid" } });
      admin = await openTestRedis(redisUrl, "keyport-test-prefix-admin");
      listener = await openTestRedis(redisUrl, "keyport-test-prefix-listener");
      listener.on("message", (channel: string, owner: string) => messages.push({ channel, owner }));
      await listener.subscribe(`${prefixX}key-changes`, `${prefixY}key-changes`);
      const env = { REDIS_URL: redisUrl, PLATFORM_OPENAI_API_KEY: platformOpenAiKey, KEYPORT_UPSTREAM_RETRIES: "0" };
      deploymentX = await startKeyport({ dialect: "postgres", redisPrefix: prefixX, mock, env: { ...env, KEYPORT_JWT_SECRET: randomBytes(48).toString("base64url") } });
      deploymentY = await startKeyport({ dialect: "postgres", redisPrefix: prefixY, mock, env: { ...env, KEYPORT_JWT_SECRET: randomBytes(48).toString("base64url") } });
    });
    afterAll(async () => {
      await Promise.allSettled([deploymentX?.close(), deploymentY?.close()]);
      await mock?.close();
      if (admin !== undefined) {
        await deleteTestKeys(admin, prefixX);
        await deleteTestKeys(admin, prefixY);
        await admin.quit();
      }
      await listener?.quit();
    });

    it("announces a key change only on its own deployment's channel and versions", async () => {
      const owner = `user:${sameName}`;
      const tokenX = await deploymentX.token(sameName, { tier: "premium" });
      const tokenY = await deploymentY.token(sameName, { tier: "premium" });
      const { apiKey: keyX } = await storeOpenAiKey(deploymentX, tokenX, mock);
      expect(await chat(deploymentX, tokenX)).toBe("byok");
      const versionX = await admin.get(`${prefixX}keyver:${owner}`);
      expect(versionX).toMatch(/^\d+$/);

      messages.length = 0;
      const { id: idY } = await storeOpenAiKey(deploymentY, tokenY, mock);
      expect((await deploymentY.request("DELETE", `/api/v1/api-keys/${idY}`, { token: tokenY })).status).toBe(204);
      await vi.waitFor(() => expect(messages.filter((message) => message.channel === `${prefixY}key-changes`).length).toBeGreaterThanOrEqual(4));
      // Y's changes: announced on Y's channel, under Y's keys; X saw nothing and its version stands.
      expect(messages.every((message) => message.channel === `${prefixY}key-changes` && message.owner === owner)).toBe(true);
      expect(await admin.get(`${prefixX}keyver:${owner}`)).toBe(versionX);
      expect(await chat(deploymentX, tokenX)).toBe("byok");
      expect(mock.requests().at(-1)?.headers.authorization).toBe(`Bearer ${keyX}`);
    });

    it("keeps each deployment's rate-limit counters apart", async () => {
      const tokenX = await deploymentX.token(limitedName, { tier: "community" });
      const tokenY = await deploymentY.token(limitedName, { tier: "community" });
      // The counts below must fall in one minute window of the Redis server's clock.
      const [seconds] = await admin.time();
      const left = 60 - (Number(seconds) % 60);
      if (left < 15) await new Promise((resolve) => setTimeout(resolve, left * 1000 + 100));
      const remaining = async (instance: TestKeyport, token: string) => {
        const { response } = await openAiThrough(instance.url, token)
          .chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "count me" }] })
          .withResponse();
        return Number(response.headers.get("ratelimit-remaining"));
      };
      const first = await remaining(deploymentX, tokenX);
      expect(await remaining(deploymentX, tokenX)).toBe(first - 1);
      expect(await remaining(deploymentX, tokenX)).toBe(first - 2);
      // Same owner name, other deployment: its own, untouched count.
      expect(await remaining(deploymentY, tokenY)).toBe(first);
    });

    it("writes no Redis key outside its prefix", async () => {
      const keys: string[] = [];
      let cursor = "0";
      do {
        const [next, batch] = await admin.scan(cursor, "MATCH", `*${sameName}*`, "COUNT", 1000);
        keys.push(...batch);
        cursor = next;
      } while (cursor !== "0");
      const limited: string[] = [];
      do {
        const [next, batch] = await admin.scan(cursor, "MATCH", `*{user:${limitedName}}*`, "COUNT", 1000);
        limited.push(...batch);
        cursor = next;
      } while (cursor !== "0");
      expect(keys.length).toBeGreaterThanOrEqual(2);
      expect(limited.length).toBeGreaterThanOrEqual(4);
      for (const key of [...keys, ...limited]) expect(key.startsWith(prefixX) || key.startsWith(prefixY), key).toBe(true);
    });
  });
});
