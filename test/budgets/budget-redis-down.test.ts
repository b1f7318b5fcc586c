import type { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createUsers, type GatewayKeyport, startGateway, storeKey, type TestUser } from "../gateway/gateway-support.js";
import { deleteTestKeys, describeRedis, openTestRedis, uniqueTestPrefix } from "../support/redis.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";
import { chat, chatBody, putLimits } from "./budget-support.js";

/**
 * Budgets fail closed: with the Redis ledger cut off, a call a cap applies to is refused with 503
 * `unavailable` (nothing goes upstream), while an owner without caps is served as before; once
 * Redis answers again the budget works again.
 */
await describeRedis("budgets when Redis cannot be reached", (redisUrl) => {
  const prefix = uniqueTestPrefix("budget-down");
  let proxy: TcpProxy;
  let keyport: GatewayKeyport;
  let redis: Redis;
  let newUser: (tier: string) => Promise<TestUser>;

  beforeAll(async () => {
    redis = await openTestRedis(redisUrl);
    proxy = await startTcpProxy(new URL(redisUrl).host);
    keyport = await startGateway({ redisPrefix: prefix, env: { REDIS_URL: proxy.urlFor(redisUrl), KEYPORT_UPSTREAM_RETRIES: "0" } });
    newUser = createUsers(keyport, "budget-down");
  });
  afterAll(async () => {
    await keyport?.close();
    await proxy?.close();
    if (redis !== undefined) {
      await deleteTestKeys(redis, prefix);
      await redis.quit();
    }
  });

  it("refuses capped calls with 503 and serves uncapped ones while Redis is cut off", async () => {
    const capped = await newUser("premium");
    const uncapped = await newUser("premium");
    await storeKey(keyport, capped, "openai");
    await storeKey(keyport, uncapped, "openai");
    await putLimits(keyport, capped.token, { monthlyBudgetUsd: 100 });
    expect((await chat(keyport, capped.token, chatBody(capped.marker))).status).toBe(200);

    proxy.cut();
    try {
      const refused = await chat(keyport, capped.token, chatBody(`${capped.marker}-cut`));
      expect(refused.status, refused.text).toBe(503);
      expect(refused.headers.get("retry-after")).not.toBeNull();
      expect(refused.body.error.code).toBe("unavailable");
      expect(keyport.mock.requests().filter((request) => JSON.stringify(request.body ?? "").includes(`${capped.marker}-cut`))).toHaveLength(0);

      const served = await chat(keyport, uncapped.token, chatBody(uncapped.marker));
      expect(served.status, served.text).toBe(200);
    } finally {
      proxy.restore();
    }

    // Back: the ledger answers again (the connection reconnects on its own).
    const deadline = Date.now() + 15_000;
    let status = 0;
    while (Date.now() < deadline) {
      status = (await chat(keyport, capped.token, chatBody(capped.marker))).status;
      if (status === 200) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(status).toBe(200);
  });
});
