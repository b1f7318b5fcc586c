import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startMockProvider } from "../../src/mock-provider/mock-provider.js";
import type { MockProvider } from "../../src/mock-provider/types.js";
import { startKeyport, type TestKeyport } from "../support/harness.js";
import { openAiKey } from "../support/keys.js";
import { deleteTestKeys, describeRedis, openTestRedis, uniqueTestPrefix } from "../support/redis.js";

/**
 * The key-check limit (creates, secret replacements and tests per owner per minute) is the
 * defence against trying stolen keys through Keyport: two instances on one Redis share it.
 */
await describeRedis("key-check limit across instances", (redisUrl) => {
  const redisPrefix = uniqueTestPrefix("key-checks");
  let mock: MockProvider;
  let redis: Redis;
  let instances: [TestKeyport, TestKeyport];

  beforeAll(async () => {
    mock = await startMockProvider({ acceptUnknownKeys: false });
    redis = await openTestRedis(redisUrl);
    // One JWT secret, so one token is good on both instances; each has its own SQLite file.
    const env = { REDIS_URL: redisUrl, KEYPORT_JWT_SECRET: randomBytes(48).toString("base64url"), KEYPORT_KEY_CHECKS_PER_MINUTE: "3" };
    instances = [await startKeyport({ mock, redisPrefix, env }), await startKeyport({ mock, redisPrefix, env })];
  });

  afterAll(async () => {
    await Promise.allSettled(instances.map((instance) => instance.close()));
    await mock?.close();
    if (redis !== undefined) {
      await deleteTestKeys(redis, redisPrefix);
      await redis.quit();
    }
  });

  it("allows the limit once in total, not once per instance, and audits the refused attempt", async () => {
    const [a, b] = instances;
    const token = await a.token(`shared-${randomBytes(4).toString("hex")}`);
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 6; attempt += 1) {
      const apiKey = openAiKey();
      mock.setKey(apiKey, "valid");
      const instance = attempt % 2 === 0 ? a : b;
      const response = await instance.request("POST", "/api/v1/api-keys", { token, body: { provider: "openai", apiKey } });
      statuses.push(response.status);
      if (response.status === 429) {
        const retryAfter = Number(response.headers.get("retry-after"));
        expect(retryAfter).toBeGreaterThanOrEqual(1);
        expect(retryAfter).toBeLessThanOrEqual(60);
      }
    }
    expect(statuses).toEqual([201, 201, 201, 429, 429, 429]);

    const audit = await b.request("GET", "/api/v1/audit", { token });
    const rejections = (audit.body.events as { type: string; detail: Record<string, unknown> }[]).filter((event) => event.type === "key.rejected");
    expect(rejections.map((event) => event.detail.reason)).toEqual(["rate_limited", "rate_limited"]);
  });
});
