import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMockProvider } from "../../src/mock-provider/mock-provider.js";
import type { MockProvider } from "../../src/mock-provider/types.js";
import { waitUntil } from "../gateway/gateway-clients.js";
import { startKeyport, type StartOptions, type TestKeyport } from "../support/harness.js";
import { openAiKey } from "../support/keys.js";
import { createTestSchemaName, describePostgres, dropTestSchema } from "../support/postgres.js";
import { deleteTestKeys, describeRedis, openTestRedis, uniqueTestPrefix } from "../support/redis.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";
import { chat, chatBody, eventually, expectBudgetRefusal, putLimits, worstCaseOf } from "./budget-support.js";

const CALLS = 100;
const ALLOWED = 10;
const RANGE = { from: "2000-01-01", to: "3000-01-01" };

/**
 * The mock provider behind a TCP proxy: while the proxy is paused, the calls Keyport lets
 * through wait on their way to the provider, so every call has reserved or been refused before
 * any settles (a settled call frees what it did not use of its worst case, and a later call
 * could then fit, which is right but not what this test counts).
 */
async function providerBehindProxy(): Promise<{ mock: MockProvider; proxy: TcpProxy; env: Record<string, string> }> {
  const mock = await startMockProvider({ recordLimit: 10_000 });
  const proxy = await startTcpProxy(new URL(mock.url).host);
  const base = proxy.urlFor(mock.url).replace(/\/$/, "");
  return { mock, proxy, env: { OPENAI_BASE_URL: `${base}/v1`, ANTHROPIC_BASE_URL: base, KEYPORT_UPSTREAM_RETRIES: "0" } };
}

/**
 * 100 concurrent calls from an owner whose budget holds exactly 10 calls' worst case, on the
 * owner's own key, spread over `instances`: at most 10 reach the provider, every other call is
 * refused with the OpenAI-shaped 429, what is recorded stays within the budget, and the alert
 * threshold (half the budget) and the budget itself each produce exactly one notification event.
 */
async function budgetRace(instances: readonly TestKeyport[], mock: MockProvider, proxy: TcpProxy, label: string): Promise<void> {
  const [first] = instances;
  if (first === undefined) throw new Error("no instance");
  const sub = `${label}-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;
  const owner = `user:${sub}`;
  const token = await first.token(sub, { tier: "premium" });
  const apiKey = openAiKey();
  mock.setKey(apiKey, "valid");
  const created = await first.request("POST", "/api/v1/api-keys", { token, body: { provider: "openai", apiKey } });
  expect(created.status, created.text).toBe(201);

  const body = chatBody(sub);
  const worst = worstCaseOf(body);
  const budgetNano = ALLOWED * worst;
  // The threshold in whole micro-USD, as the API takes it: about half the budget.
  const thresholdNano = Math.floor(budgetNano / 2 / 1000) * 1000;
  await putLimits(first, token, { monthlyBudgetUsd: budgetNano / 1e9, notifyThresholdUsd: thresholdNano / 1e9 });

  proxy.pause();
  let answered = 0;
  const calls = Array.from({ length: CALLS }, (_, index) =>
    chat(instances[index % instances.length] ?? first, token, body).finally(() => {
      answered += 1;
    }),
  );
  // The refusals come back at once; the calls let through wait at the proxy.
  await waitUntil(() => answered >= CALLS - ALLOWED, "the refusals answered", 30_000).catch(() => undefined);
  proxy.resume();
  const responses = await Promise.all(calls);

  // The owner's calls, not the key check that stored the key.
  const reached = mock.requests().filter((request) => request.path === "/v1/chat/completions" && JSON.stringify(request.body).includes(sub));
  const ok = responses.filter((response) => response.status === 200);
  const refused = responses.filter((response) => response.status !== 200);
  expect(reached.length).toBeLessThanOrEqual(ALLOWED);
  expect(reached.length).toBeGreaterThan(0);
  expect(ok.length).toBe(reached.length);
  for (const response of refused) expectBudgetRefusal(response, /Your monthly budget would be exceeded/);

  const records = await eventually(
    () => first.app.store.usage.listByOwner(owner, RANGE),
    (found) => found.length >= ok.length,
  );
  expect(records.length).toBe(ok.length);
  const recordedNano = records.reduce((sum, record) => sum + (record.costNanoUsd ?? 0), 0);
  expect(recordedNano).toBeGreaterThan(0);
  expect(recordedNano).toBeLessThanOrEqual(budgetNano);

  // Each notice once, however many calls crossed it at the same moment, with its outbox rows.
  const budgetEvents = async () => (await first.app.store.notifications.listEvents(owner, { limit: 100 })).filter(({ event }) => event.type.startsWith("budget."));
  const events = await eventually(budgetEvents, (found) => found.length >= 2);
  const types = events.map(({ event }) => event.type).sort();
  expect(types).toEqual(["budget.exceeded", "budget.threshold_reached"]);
  for (const { deliveries } of events) expect(deliveries.length).toBeGreaterThan(0);
  const exceeded = events.find(({ event }) => event.type === "budget.exceeded");
  expect(exceeded?.event.detail).toMatchObject({ cap: "owner_budget", limitUsd: budgetNano / 1e9 });

  // The Limits view adds up: what was reserved is settled, and nothing is left over the budget.
  const limits = await eventually(
    () => first.request("GET", "/api/v1/limits", { token }),
    (response) => Math.abs(response.body.spentUsd * 1e9 - recordedNano) < 1,
  );
  expect(Math.round(limits.body.spentUsd * 1e9)).toBe(recordedNano);
  expect(limits.body.caps[0]).toMatchObject({ kind: "owner_budget", limitUsd: budgetNano / 1e9 });
}

describe("budget race on SQLite (one instance, the database ledger)", () => {
  let provider: Awaited<ReturnType<typeof providerBehindProxy>>;
  let keyport: TestKeyport;
  beforeAll(async () => {
    provider = await providerBehindProxy();
    keyport = await startKeyport({ mock: provider.mock, env: provider.env });
  });
  afterAll(async () => {
    await keyport?.close();
    await provider?.proxy.close();
    await provider?.mock.close();
  });

  it("100 concurrent calls against a budget for 10: at most 10 reach the provider, the rest get 429", async () => {
    await budgetRace([keyport], provider.mock, provider.proxy, "race-sqlite");
  });
});

await describePostgres("budget race on PostgreSQL without Redis (the database ledger)", () => {
  let provider: Awaited<ReturnType<typeof providerBehindProxy>>;
  let keyport: TestKeyport;
  beforeAll(async () => {
    provider = await providerBehindProxy();
    keyport = await startKeyport({ mock: provider.mock, dialect: "postgres", env: provider.env });
  });
  afterAll(async () => {
    await keyport?.close();
    await provider?.proxy.close();
    await provider?.mock.close();
  });

  it("100 concurrent calls against a budget for 10: at most 10 reach the provider, the rest get 429", async () => {
    await budgetRace([keyport], provider.mock, provider.proxy, "race-pg");
  });
});

await describeRedis("budget race across instances", async (redisUrl) => {
  await describePostgres("two instances on one PostgreSQL schema and one Redis (the Redis ledger)", (postgresUrl) => {
    const schema = createTestSchemaName();
    const redisPrefix = uniqueTestPrefix("budget-race");
    let provider: Awaited<ReturnType<typeof providerBehindProxy>>;
    let redis: Redis;
    let instances: TestKeyport[] = [];

    beforeAll(async () => {
      provider = await providerBehindProxy();
      redis = await openTestRedis(redisUrl);
      const options: StartOptions = {
        dialect: "postgres",
        postgresSchema: schema,
        redisPrefix,
        mock: provider.mock,
        env: {
          ...provider.env,
          REDIS_URL: redisUrl,
          ENCRYPTION_KEY: randomBytes(32).toString("hex"),
          KEYPORT_JWT_SECRET: randomBytes(48).toString("base64url"),
        },
      };
      const first = await startKeyport(options);
      instances = [first, await startKeyport(options)];
    });
    afterAll(async () => {
      await Promise.allSettled(instances.map((instance) => instance.close()));
      await provider?.proxy.close();
      await provider?.mock.close();
      await dropTestSchema(postgresUrl, schema);
      if (redis !== undefined) {
        await deleteTestKeys(redis, redisPrefix);
        await redis.quit();
      }
    });

    it("100 concurrent calls split between two instances against a budget for 10: at most 10 reach the provider", async () => {
      await budgetRace(instances, provider.mock, provider.proxy, "race-redis");
    });
  });
});
