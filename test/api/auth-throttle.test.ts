import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMockProvider } from "../../src/mock-provider/mock-provider.js";
import type { MockProvider } from "../../src/mock-provider/types.js";
import { createUsers, startGateway, type GatewayKeyport } from "../gateway/gateway-support.js";
import { startKeyport, type TestKeyport, type TestResponse } from "../support/harness.js";
import { deleteTestKeys, describeRedis, openTestRedis, uniqueTestPrefix } from "../support/redis.js";

/**
 * Failed authentications are throttled per client address, on the management API and on the
 * gateway alike: after the allowance (`KEYPORT_AUTH_FAILURES_PER_MINUTE`, default 20) every
 * further attempt from that address is a 429 with `retry-after`, answered before any signature
 * check; other addresses and tokens that verified before are not slowed.
 */

/** A token-shaped string no key signed. */
const badToken = (index: number) => `eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.${randomBytes(32).toString("base64url")}${index}`;

/** Sends `count` requests one after another, each with a fresh bad token, and returns the answers. */
async function sendBadTokens(count: number, send: (token: string) => Promise<TestResponse>): Promise<TestResponse[]> {
  const responses: TestResponse[] = [];
  for (let index = 0; index < count; index += 1) responses.push(await send(badToken(index)));
  return responses;
}

function expectRetryAfter(response: TestResponse): void {
  const retryAfter = Number(response.headers.get("retry-after"));
  expect(Number.isInteger(retryAfter), response.text).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(60);
}

const chatBody = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };

describe("failed authentication throttle behind a trusted proxy", () => {
  let keyport: GatewayKeyport;
  beforeAll(async () => {
    // 20: the default allowance.
    keyport = await startGateway({ env: { KEYPORT_TRUST_PROXY: "127.0.0.1", KEYPORT_AUTH_FAILURES_PER_MINUTE: "20" } });
  });
  afterAll(async () => {
    await keyport.close();
  });

  it("answers 600 bad tokens from one address with 20 401s, then 429s with retry-after in the /api envelope", async () => {
    const responses = await sendBadTokens(600, (token) =>
      keyport.request("GET", "/api/v1/api-keys", { token, headers: { "x-forwarded-for": "198.51.100.10" } }),
    );
    expect(responses.slice(0, 20).map((response) => response.status)).toEqual(Array<number>(20).fill(401));
    expect(responses.slice(20).every((response) => response.status === 429)).toBe(true);
    const last = responses.at(-1);
    if (last === undefined) throw new Error("no response");
    expect(last.body).toEqual({
      error: { type: "rate_limit_error", code: "rate_limited", message: expect.stringMatching(/failed authentications/), requestId: expect.any(String) },
    });
    expectRetryAfter(last);

    // A good token from another address still works.
    const user = await createUsers(keyport, "throttle-api")("community");
    const ok = await keyport.request("GET", "/api/v1/api-keys", { token: user.token, headers: { "x-forwarded-for": "198.51.100.11" } });
    expect(ok.status, ok.text).toBe(200);
  });

  it("throttles the gateway the same way, in each provider's error shape", async () => {
    const address = "198.51.100.20";
    const openai = await sendBadTokens(600, (token) =>
      keyport.request("POST", "/openai/v1/chat/completions", { token, body: chatBody, headers: { "x-forwarded-for": address } }),
    );
    expect(openai.slice(0, 20).map((response) => response.status)).toEqual(Array<number>(20).fill(401));
    expect(openai.slice(20).every((response) => response.status === 429)).toBe(true);
    const limited = openai.at(-1);
    if (limited === undefined) throw new Error("no response");
    expect(limited.body).toEqual({ error: { message: expect.stringMatching(/failed authentications/), type: "requests", param: null, code: "rate_limit_exceeded" } });
    expectRetryAfter(limited);

    // One address, one allowance: the Anthropic routes refuse it too (x-api-key, as the SDK sends it).
    const anthropic = await keyport.request("POST", "/anthropic/v1/messages", {
      body: { model: "claude-sonnet-4-5", max_tokens: 10, messages: [{ role: "user", content: "hi" }] },
      headers: { "x-api-key": badToken(1), "x-forwarded-for": address, "anthropic-version": "2023-06-01" },
    });
    expect(anthropic.status, anthropic.text).toBe(429);
    expect(anthropic.body).toEqual({ type: "error", error: { type: "rate_limit_error", message: expect.stringMatching(/failed authentications/) } });
    expectRetryAfter(anthropic);
    // Nothing went upstream for any of them.
    expect(keyport.mock.requests().filter((request) => request.path.includes("chat") || request.path.includes("messages"))).toEqual([]);

    const user = await createUsers(keyport, "throttle-gw")("community");
    const ok = await keyport.request("POST", "/openai/v1/chat/completions", { token: user.token, body: chatBody, headers: { "x-forwarded-for": "198.51.100.21" } });
    expect(ok.status, ok.text).toBe(200);
  });

  it("does not slow a token that verified before, even once its address is blocked", async () => {
    const address = "198.51.100.30";
    const user = await createUsers(keyport, "throttle-known")("community");
    const first = await keyport.request("GET", "/api/v1/api-keys", { token: user.token, headers: { "x-forwarded-for": address } });
    expect(first.status, first.text).toBe(200);
    await sendBadTokens(25, (token) => keyport.request("GET", "/api/v1/api-keys", { token, headers: { "x-forwarded-for": address } }));
    const again = await keyport.request("POST", "/openai/v1/chat/completions", { token: user.token, body: chatBody, headers: { "x-forwarded-for": address } });
    expect(again.status, again.text).toBe(200);
  });
});

describe("failed authentication throttle without a trusted proxy", () => {
  let keyport: TestKeyport;
  beforeAll(async () => {
    keyport = await startKeyport({ env: { KEYPORT_AUTH_FAILURES_PER_MINUTE: "3" } });
  });
  afterAll(async () => {
    await keyport.close();
  });

  it("ignores X-Forwarded-For: a client cannot dodge the throttle by naming other addresses", async () => {
    const responses = await sendBadTokens(6, (token) =>
      keyport.request("GET", "/api/v1/api-keys", { token, headers: { "x-forwarded-for": `192.0.2.${randomBytes(1)[0]}` } }),
    );
    expect(responses.map((response) => response.status)).toEqual([401, 401, 401, 429, 429, 429]);
  });
});

await describeRedis("failed authentication throttle across instances", (redisUrl) => {
  const redisPrefix = uniqueTestPrefix("auth-throttle");
  let mock: MockProvider;
  let redis: Redis;
  let instances: [TestKeyport, TestKeyport];

  beforeAll(async () => {
    mock = await startMockProvider({ acceptUnknownKeys: false });
    redis = await openTestRedis(redisUrl);
    const env = {
      REDIS_URL: redisUrl,
      KEYPORT_JWT_SECRET: randomBytes(48).toString("base64url"),
      KEYPORT_TRUST_PROXY: "127.0.0.1",
      KEYPORT_AUTH_FAILURES_PER_MINUTE: "5",
    };
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

  it("shares the count: 5 failures in total, not 5 per instance", async () => {
    const [a, b] = instances;
    const headers = { "x-forwarded-for": "203.0.113.50" };
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 10; attempt += 1) {
      const instance = attempt % 2 === 0 ? a : b;
      statuses.push((await instance.request("GET", "/api/v1/api-keys", { token: badToken(attempt), headers })).status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429, 429, 429, 429]);

    // Another address is untouched on both.
    const token = await a.token("shared-throttle");
    for (const instance of instances) {
      const ok = await instance.request("GET", "/api/v1/api-keys", { token, headers: { "x-forwarded-for": "203.0.113.51" } });
      expect(ok.status, ok.text).toBe(200);
    }
  });
});
